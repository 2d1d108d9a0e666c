// Opens the app through tauri-driver, waits until it is signed in with its queue loaded (or shows
// the sign-in screen), and saves a screenshot. Used by scripts/demo-app.sh when there is no
// display. Env: E2E_APP, SCREENSHOT (path), E2E_WD_PORT, HOLD_SECS (keep the window open).
import { remote } from 'webdriverio';
import { saveWindowShot } from './snapshot.mjs';

const out = process.env.SCREENSHOT ?? 'artifacts/demo/guestlist.png';
const browser = await remote({
  hostname: '127.0.0.1',
  port: Number(process.env.E2E_WD_PORT ?? '4444'),
  logLevel: 'warn',
  capabilities: {
    browserName: 'wry',
    'wdio:enforceWebDriverClassic': true,
    'tauri:options': { application: process.env.E2E_APP },
  },
});
try {
  await browser.waitUntil(
    async () => (await browser.$('[data-testid="detail"]').isExisting()) || (await browser.$('[data-testid="queue-empty"]').isExisting()),
    { timeout: 30000, interval: 200 },
  ).catch(() => {});
  await browser.pause(500);
  await saveWindowShot(browser, out);
  console.log(`screenshot: ${out}`);
  const hold = Number(process.env.HOLD_SECS ?? '0');
  if (hold > 0) await browser.pause(hold * 1000);
} finally {
  await browser.deleteSession().catch(() => {});
}
