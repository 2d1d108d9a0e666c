// Cold start and memory of the app (run by hand, see the README section the lead adds):
// time from session creation to the first queue row, and the summed RSS of the process tree.
import { execSync } from 'node:child_process';
import { remote } from 'webdriverio';

const t0 = Date.now();
const browser = await remote({
  hostname: '127.0.0.1',
  port: Number(process.env.E2E_WD_PORT ?? '4444'),
  logLevel: 'warn',
  capabilities: { browserName: 'wry', 'wdio:enforceWebDriverClassic': true, 'tauri:options': { application: process.env.E2E_APP } },
});
const tSession = Date.now();
await browser.$('[data-testid="app"]').waitForExist({ timeout: 30000 });
const tPainted = Date.now();
try {
  await browser.$('[data-testid="queue-row"]').waitForExist({ timeout: 120000 });
} catch (e) {
  await browser.saveScreenshot('/tmp/perf-failure.png');
  await browser.deleteSession();
  throw e;
}
const tQueue = Date.now();
await browser.waitUntil(async () => Number(await browser.$('[data-testid="count-shown"]').getAttribute('data-count')) >= Number(process.env.MIN_ROWS ?? '1'), { timeout: 120000, interval: 200 });
const tFull = Date.now();
const count = await browser.$('[data-testid="count-shown"]').getAttribute('data-count');
// Keyboard responsiveness over the big list: 200 x `j`.
const tk = Date.now();
for (let i = 0; i < 40; i++) await browser.keys(['j', 'j', 'j', 'j', 'j']);
const tKeys = Date.now() - tk;
await browser.keys(['G']);
await browser.pause(1500);
const lastRow = await browser.$('[data-testid="queue-row"].cursor').isExisting();
const domRows = (await browser.$$('[data-testid="queue-row"]')).length;
await browser.pause(1000);
const rss = execSync(
  `ps -eo rss,comm | awk '$2 ~ /^(guestlist|WebKitWebProces|WebKitNetworkPr)/ {s+=$1} END {print s}'`,
).toString().trim();
console.log(JSON.stringify({
  sessionMs: tSession - t0,
  paintedMs: tPainted - t0,
  firstRowMs: tQueue - t0,
  allCountedMs: tFull - t0,
  rows: Number(count),
  domRows,
  cursorOnLastRowAfterG: lastRow,
  keys200Ms: tKeys,
  rssMiB: Math.round(Number(rss) / 1024),
}));
if (process.env.SCREENSHOT) await browser.saveScreenshot(process.env.SCREENSHOT);
await browser.deleteSession();
