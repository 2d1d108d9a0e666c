// The app-in-its-window figures of `make bench` (run by scripts/bench-app.sh under Xvfb, a private
// D-Bus session with an unlocked gnome-keyring, and tauri-driver). Never part of `make test`.
//
// 1. Sign-in run: the app starts with GUESTLIST_AUTO_SIGN_IN=1, signs in as Ada at devtenant and
//    syncs BENCH_APP_ROWS pending requests into its cache; then it quits. One warm-up launch of the
//    minimal Tauri 2 app follows (fontconfig and WebKit caches, page cache), not recorded.
// 2. BENCH_RUNS measured runs, each one launch of the app, then one of the minimal app as Tauri
//    makes it, then one of the minimal app with `--software-rendering` (painting the way the app
//    does; scenarios `tauri_min_sw_*`) (new processes, session restored from the keyring, cache
//    warm on disk):
//    - cold start: from the app process's start (/proc/<pid>/stat starttime, the kernel's record
//      of the fork, so no WebDriver set-up is counted) to the page's `guestlist:first-rows-painted`
//      mark (ui/src/components/QueueList.svelte: the task after the frame that showed the first
//      loaded rows), put on one clock with performance.timeOrigin; also from the WebDriver
//      new-session request (`session_ms`) and to the page's time origin (`webview_ms`);
//    - memory: after BENCH_APP_SETTLE_MS, the sum of `Pss:` (and `Rss:`) of /proc/<pid>/smaps_rollup
//      over the app process and all its descendants (WebKitWebProcess, WebKitNetworkProcess;
//      also per process: `main_kb`, `web_kb`, `network_kb`); the same for the minimal app, so
//      their ratio is taken within one run;
//    - search keystroke: `/`, then `user1234` and 8 Backspaces, one key at a time; each from the
//      keydown (a capture listener installed in the page) to the first `guestlist:rows-painted`
//      mark after it (the frame showing the filtered rows painted); median of the 16;
//    - side-by-side: `j` then Enter in one WebDriver action (the detail of the new row is not
//      loaded yet), from Enter's keydown to the task after the first frame in which the reviewer
//      is in `open` mode showing the detail of the row the cursor was on at Enter; median of 5. Also with the detail
//      already loaded (`j`, 0.5 s, Enter): `app_side_by_side_preloaded`.
// Each figure is appended to BENCH_RAW as `scenario run key=value …` (bench-report's format).
//
// Env: BENCH_APP, BENCH_MIN_APP (absolute paths), BENCH_RAW, BENCH_RUNS (5), BENCH_APP_ROWS
// (10000), BENCH_APP_SETTLE_MS (3000), BENCH_APP_OUT (screenshots), BENCH_TD_PID (tauri-driver's
// pid: the apps are looked for among its descendants), E2E_WD_PORT.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Key, remote } from 'webdriverio';
import { saveWindowShot } from './snapshot.mjs';

const need = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`measure.mjs: ${k} is not set`);
  return v;
};
const APP = fs.realpathSync(need('BENCH_APP'));
const MIN_APP = fs.realpathSync(need('BENCH_MIN_APP'));
const RAW = need('BENCH_RAW');
const TD_PID = Number(need('BENCH_TD_PID'));
const RUNS = Number(process.env.BENCH_RUNS ?? '5');
const ROWS = Number(process.env.BENCH_APP_ROWS ?? '10000');
const SETTLE_MS = Number(process.env.BENCH_APP_SETTLE_MS ?? '3000');
const OUT = process.env.BENCH_APP_OUT ?? '.';
const WD_PORT = Number(process.env.E2E_WD_PORT ?? '4444');
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

const log = (s) => console.log(`   ${s}`);
const raw = (scenario, run, kv) => {
  const line = `${scenario} ${run} ${Object.entries(kv).map(([k, v]) => `${k}=${Number(v).toFixed(2).replace(/\.?0+$/, '')}`).join(' ')}`;
  fs.appendFileSync(RAW, `${line}\n`);
  log(line);
};
const median = (xs) => {
  const v = [...xs].sort((a, b) => a - b);
  const n = v.length;
  return n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- processes ------------------------------------------------------------------------------
/** `/proc/<pid>/stat` fields after the command name: [0] is field 3 (state), so field N is [N-3]. */
function stat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { pid, ppid: Number(f[1]), startTicks: Number(f[19]) };
  } catch {
    return null; // gone
  }
}
function processes() {
  return fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map((d) => stat(Number(d))).filter(Boolean);
}
function descendants(root, all = processes()) {
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const p of all) if (p.ppid === out[i]) out.push(p.pid);
  return out;
}
function exeOf(pid) {
  try {
    return fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return null;
  }
}
/** The newest process running `exe` under tauri-driver. */
function findApp(exe) {
  const all = processes();
  const mine = descendants(TD_PID, all).filter((pid) => exeOf(pid) === exe);
  const withStart = mine.map((pid) => all.find((p) => p.pid === pid)).filter(Boolean);
  withStart.sort((a, b) => b.startTicks - a.startTicks);
  return withStart[0] ?? null;
}
/** Epoch milliseconds of boot (CLOCK_BOOTTIME zero), the clock of `starttime`; 10 ms resolution. */
function bootEpochMs() {
  const up = Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  return Date.now() - up * 1000;
}
/** Sum of Pss and Rss (kB) of smaps_rollup over `pid` and its descendants. */
function memory(pid) {
  let pss = 0;
  let rss = 0;
  const tree = descendants(pid);
  const names = [];
  const parts = {};
  for (const p of tree) {
    let text;
    try {
      text = fs.readFileSync(`/proc/${p}/smaps_rollup`, 'utf8');
    } catch {
      continue;
    }
    const one = Number(/^Pss:\s+(\d+) kB/m.exec(text)?.[1] ?? 0);
    pss += one;
    rss += Number(/^Rss:\s+(\d+) kB/m.exec(text)?.[1] ?? 0);
    const name = fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim();
    names.push(name);
    // Per process kind: the app itself, WebKit's web and network processes.
    const kind = p === pid ? 'main_kb' : name.startsWith('WebKitWebProc') ? 'web_kb' : name.startsWith('WebKitNetwork') ? 'network_kb' : 'other_kb';
    parts[kind] = (parts[kind] ?? 0) + one;
  }
  return { pss, rss, procs: names.length, names, parts };
}
async function waitGone(pid, ms = 8000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!stat(pid)) return true;
    await sleep(50);
  }
  return false;
}

// ---- sessions -------------------------------------------------------------------------------
async function launch(exe, args = []) {
  const requested = Date.now();
  const browser = await remote({
    hostname: '127.0.0.1',
    port: WD_PORT,
    logLevel: 'warn',
    capabilities: { browserName: 'wry', 'wdio:enforceWebDriverClassic': true, 'tauri:options': { application: exe, args } },
  });
  const proc = findApp(exe);
  if (!proc) throw new Error(`no ${exe} process under tauri-driver (pid ${TD_PID})`);
  return { browser, requested, proc };
}
/** Ends the WebDriver session and makes sure the app process is gone (SIGTERM by pid if not). */
async function quit({ browser, proc }) {
  await browser.deleteSession().catch(() => {});
  if (await waitGone(proc.pid)) return;
  process.kill(proc.pid, 'SIGTERM');
  if (!(await waitGone(proc.pid))) throw new Error(`app ${proc.pid} did not exit`);
}
async function shown(browser) {
  return Number(await browser.$('[data-testid="count-shown"]').getAttribute('data-count').catch(() => '-1'));
}

/** Keydown capture + User Timing observer in the page; see the header. */
function installHarness(browser) {
  return browser.execute(() => {
    const b = { downs: [], painted: [], opens: [], beforeJ: null };
    window.__bench = b;
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if (e.name === 'guestlist:rows-painted') b.painted.push(e.startTime);
    }).observe({ type: 'mark' });
    window.addEventListener(
      'keydown',
      (e) => {
        const t0 = performance.now();
        b.downs.push(t0);
        const shownId = () => document.querySelector('[data-testid="detail"]')?.getAttribute('data-id') ?? null;
        // The detail the pane showed when `j` went down: the one Enter must replace. (Not the
        // cursor row's id: back from the open view the list renders no rows until scrolled.)
        if (e.key === 'j') b.beforeJ = shownId();
        if (e.key !== 'Enter') return;
        const old = b.beforeJ;
        const check = () => {
          const reviewer = document.querySelector('[data-testid="reviewer"]');
          const id = shownId();
          if (reviewer?.getAttribute('data-mode') === 'open' && id !== null && id !== old) {
            setTimeout(() => b.opens.push(performance.now() - t0));
          } else requestAnimationFrame(check);
        };
        requestAnimationFrame(check);
      },
      true,
    );
  });
}

async function searchKeystrokes(browser) {
  await browser.keys(['/']);
  await browser.waitUntil(() => browser.execute(() => document.activeElement?.getAttribute('data-testid') === 'search-input'), { timeout: 5000 });
  const samples = [];
  for (const key of [...'user1234', ...Array(8).fill(Key.Backspace)]) {
    const i = await browser.execute(() => window.__bench.downs.length);
    await browser.keys([key]);
    const ms = await browser.waitUntil(
      () =>
        browser.execute((i) => {
          const t0 = window.__bench.downs[i];
          if (t0 === undefined) return false;
          const p = window.__bench.painted.find((t) => t > t0);
          return p === undefined ? false : p - t0;
        }, i),
      { timeout: 15000, interval: 20, timeoutMsg: 'the list did not repaint after a search keystroke' },
    );
    samples.push(ms);
    await sleep(300);
  }
  return samples;
}

async function openSideBySide(browser, pauseMs) {
  const samples = [];
  for (let k = 0; k < 5; k++) {
    await browser.keys([Key.Escape]);
    await browser.waitUntil(() => browser.execute(() => document.querySelector('[data-testid="reviewer"]')?.getAttribute('data-mode') === 'list'), { timeout: 5000 });
    await sleep(300);
    const n = await browser.execute(() => window.__bench.opens.length);
    if (pauseMs > 0) {
      await browser.keys(['j']);
      await sleep(pauseMs);
      await browser.keys([Key.Enter]);
    } else {
      await browser.keys(['j', Key.Enter]);
    }
    samples.push(
      await browser.waitUntil(() => browser.execute((n) => window.__bench.opens[n] ?? false, n), {
        timeout: 15000,
        interval: 20,
        timeoutMsg: 'the side-by-side view did not open',
      }),
    );
    await sleep(200);
  }
  await browser.keys([Key.Escape]);
  return samples;
}

async function appRun(run, shots) {
  const s = await launch(APP);
  const { browser, requested, proc } = s;
  try {
    await browser.waitUntil(() => browser.execute(() => performance.getEntriesByName('guestlist:first-rows-painted').length > 0), {
      timeout: 60000,
      interval: 25,
      timeoutMsg: 'no queue row painted within 60 s',
    });
    const page = await browser.execute(() => ({
      origin: performance.timeOrigin,
      paint: performance.getEntriesByName('guestlist:first-rows-painted')[0].startTime,
    }));
    const startMs = bootEpochMs() + (proc.startTicks * 1000) / CLK_TCK;
    const paintEpoch = page.origin + page.paint;
    await browser.waitUntil(async () => (await shown(browser)) === ROWS, { timeout: 30000, timeoutMsg: `the queue does not show ${ROWS} requests` });
    raw('app_cold_start', run, {
      ms: paintEpoch - startMs,
      session_ms: paintEpoch - requested,
      webview_ms: page.origin - startMs,
      rows: await shown(browser),
    });
    await sleep(SETTLE_MS);
    const m = memory(proc.pid);
    raw('app_pss', run, { kb: m.pss, rss_kb: m.rss, procs: m.procs, ...m.parts });
    if (shots) {
      log(`app process tree: ${m.names.join(', ')}`);
      await saveWindowShot(browser, path.join(OUT, 'app-queue.png'));
    }
    await installHarness(browser);
    const search = await searchKeystrokes(browser);
    raw('app_search', run, { ms: median(search), min_ms: Math.min(...search), max_ms: Math.max(...search), n: search.length });
    const cold = await openSideBySide(browser, 0);
    raw('app_side_by_side', run, { ms: median(cold), min_ms: Math.min(...cold), max_ms: Math.max(...cold), n: cold.length });
    const warm = await openSideBySide(browser, 500);
    raw('app_side_by_side_preloaded', run, { ms: median(warm), min_ms: Math.min(...warm), max_ms: Math.max(...warm), n: warm.length });
    if (shots) {
      await browser.keys(['j', Key.Enter]);
      await browser.waitUntil(() => browser.execute(() => document.querySelector('[data-testid="reviewer"]')?.getAttribute('data-mode') === 'open'), { timeout: 5000 });
      await sleep(500);
      await saveWindowShot(browser, path.join(OUT, 'app-side-by-side.png'));
    }
  } catch (e) {
    await saveWindowShot(browser, path.join(OUT, `failure-app-${run}.png`)).catch(() => {});
    const state = await browser.execute(() => ({ bench: window.__bench, mode: document.querySelector('[data-testid="reviewer"]')?.getAttribute('data-mode'), detail: document.querySelector('[data-testid="detail"]')?.getAttribute('data-id'), active: document.activeElement?.outerHTML.slice(0, 120) })).catch(() => null);
    console.error(`measure.mjs: page state at the failure: ${JSON.stringify(state)}`);
    throw e;
  } finally {
    await quit(s);
  }
}

/** One launch of the minimal app; `software`: with `--software-rendering` (scenarios `tauri_min_sw_*`). */
async function minimalRun(run, software = false) {
  const s = await launch(MIN_APP, software ? ['--software-rendering'] : []);
  const scenario = software ? 'tauri_min_sw' : 'tauri_min';
  const { browser, requested, proc } = s;
  try {
    await browser.waitUntil(() => browser.execute(() => document.readyState === 'complete'), { timeout: 30000, interval: 25 });
    const page = await browser.execute(() => ({
      origin: performance.timeOrigin,
      load: performance.getEntriesByType('navigation')[0]?.loadEventEnd ?? 0,
    }));
    const startMs = bootEpochMs() + (proc.startTicks * 1000) / CLK_TCK;
    await sleep(SETTLE_MS);
    const m = memory(proc.pid);
    if (run === 0) {
      log(`minimal app process tree: ${m.names.join(', ')}`);
      return;
    }
    raw(`${scenario}_start`, run, { ms: page.origin + page.load - startMs, session_ms: page.origin + page.load - requested });
    raw(`${scenario}_pss`, run, { kb: m.pss, rss_kb: m.rss, procs: m.procs, ...m.parts });
  } finally {
    await quit(s);
  }
}

// ---- 1. sign in and fill the cache ------------------------------------------------------------
fs.mkdirSync(OUT, { recursive: true });
{
  log(`sign-in run: ${APP}`);
  const s = await launch(APP);
  const t = Date.now();
  try {
    await s.browser.waitUntil(async () => (await shown(s.browser)) === ROWS, {
      timeout: 180000,
      interval: 250,
      timeoutMsg: `the app did not sign in and sync ${ROWS} requests within 180 s`,
    });
    log(`signed in, ${ROWS} requests cached in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    await sleep(1000); // let the cache writes settle
  } catch (e) {
    await saveWindowShot(s.browser, path.join(OUT, 'failure-sign-in.png')).catch(() => {});
    throw e;
  } finally {
    await quit(s);
  }
}
log('warm-up launch of the minimal app');
await minimalRun(0);

// ---- 2. measured runs -------------------------------------------------------------------------
for (let run = 1; run <= RUNS; run++) {
  await appRun(run, run === 1);
  await minimalRun(run);
  await minimalRun(run, true);
}
