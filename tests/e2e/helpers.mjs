// The window E2E's helpers (tests/e2e/run.mjs): element lookup and waits, screenshots, the
// axe-core accessibility check, the filter-label measurement, and what devtenant and
// guestlist-server report. `helpers(browser, { out, devtenant })` binds them to one WebDriver
// session, the artifacts folder and devtenant's URL.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { remote } from 'webdriverio';
import { saveWindowShot } from './snapshot.mjs';

/** The environment variable `name`; throws when it is unset or empty. */
export function must(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

/** A WebDriver session (tauri-driver on E2E_WD_PORT, default 4444) on the app binary `app`. */
export function connect(app) {
  return remote({
    hostname: '127.0.0.1',
    port: Number(process.env.E2E_WD_PORT ?? '4444'),
    logLevel: 'warn',
    connectionRetryCount: 0,
    capabilities: {
      browserName: 'wry',
      'wdio:enforceWebDriverClassic': true,
      'tauri:options': { application: app },
    },
  });
}

/**
 * The helpers of run.mjs bound to `browser` (a WebdriverIO session), `out` (the artifacts
 * folder: screenshots, axe.json, filters-*.json) and `devtenant` (devtenant's base URL).
 */
export function helpers(browser, { out: OUT, devtenant: DEVTENANT }) {
  // axe-core (WCAG 2.0–2.2 A/AA rules and best practices) is injected into the page through
  // WebDriver: the app's CSP never sees a <script> element. Every screen the run reaches is checked;
  // a serious or critical violation fails the run. The full results go to ARTIFACTS/axe.json.
  const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  const axeReport = {};
  async function axeCheck(screen) {
    await browser.pause(300); // let transitions and live regions settle
    await browser.execute(`if (!window.axe) { ${AXE_SOURCE}\n } return true;`);
    const out = await browser.executeAsync((done) => {
      window.axe
        .run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] } })
        .then(
          (r) => done(JSON.stringify(r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target, summary: n.failureSummary })) })))),
          (e) => done(JSON.stringify({ error: String(e) })),
        );
    });
    const violations = JSON.parse(out);
    if (!Array.isArray(violations)) throw new Error(`axe-core did not run on ${screen}: ${violations.error}`);
    axeReport[screen] = violations;
    fs.writeFileSync(path.join(OUT, 'axe.json'), JSON.stringify(axeReport, null, 2));
    const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    const lines = bad.map((v) => `${v.impact} ${v.id} (${v.help}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
    console.log(`e2e: axe on ${screen}: ${violations.length} violation(s), ${bad.length} serious/critical`);
    assert.equal(bad.length, 0, `axe-core on the ${screen} screen:\n  ${lines.join('\n  ')}`);
  }
  // What has focus, described by test id / tag (keyboard checks).
  const focused = () =>
    browser.execute(() => {
      const a = document.activeElement;
      if (!a) return '';
      const d = a.closest('dialog');
      return `${a.getAttribute('data-testid') ?? a.tagName.toLowerCase()}${d ? ` in ${d.getAttribute('data-testid')}` : ''}`;
    });

  const t = (id, extra = '') => browser.$(`[data-testid="${id}"]${extra}`);
  const attr = async (id, name) => (await t(id)).getAttribute(name);
  const shot = async (name) => {
    await browser.pause(400); // a screenshot can lag the DOM by a frame
    await saveWindowShot(browser, path.join(OUT, name));
  };
  const waitFor = (fn, timeout, timeoutMsg) => browser.waitUntil(fn, { timeout, interval: 150, timeoutMsg });
  /**
   * Every filter menu's label is whole (issue 15: French at 1,280 px cut "Tous les fou…"): the
   * toolbar does not overflow, and each menu shows its chosen option whole — its scrollWidth fits
   * its clientWidth, and the option's text, measured in the menu's font, fits inside the menu's
   * padding with room for the arrow (24 px, as ui/src/lib/fold.ts). When the filters are folded behind the Filters button, the
   * menus are checked in the opened panel. Returns what was measured.
   */
  const filterLabelsWhole = async (lang) => {
    const measure = () =>
      browser.execute(() => {
        const header = document.querySelector('header.toolbar');
        const ctx = document.createElement('canvas').getContext('2d');
        const menus = ['filter-provider', 'filter-domain', 'filter-age', 'sort'].map((id) => {
          const el = document.querySelector(`[data-testid="${id}"]`);
          const cs = getComputedStyle(el);
          ctx.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
          const label = el.selectedOptions[0]?.textContent ?? '';
          const room = el.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight) - 24; // fold.ts ARROW_PX
          return { id, label, text: Math.ceil(ctx.measureText(label).width), room: Math.floor(room), scroll: el.scrollWidth, client: el.clientWidth, shown: el.offsetParent !== null };
        });
        return { window: window.innerWidth, folded: header.classList.contains('folded'), header: [header.scrollWidth, header.clientWidth], menus };
      });
    let m = await measure();
    const opened = m.menus.some((x) => !x.shown);
    if (opened) {
      assert.ok(m.folded || m.window <= 1100, `${lang}: filters hidden but not folded: ${JSON.stringify(m)}`);
      await (await t('filters-toggle')).click();
      await waitFor(async () => (await measure()).menus.every((x) => x.shown), 3000, `${lang}: the Filters button did not show the menus`);
      m = await measure();
    }
    fs.writeFileSync(path.join(OUT, `filters-${lang}.json`), JSON.stringify(m, null, 2));
    assert.ok(m.header[0] <= m.header[1] + 1, `${lang}: the toolbar overflows: ${JSON.stringify(m)}`);
    for (const x of m.menus) {
      assert.ok(x.scroll <= x.client, `${lang}: ${x.id} scrolls: ${JSON.stringify(x)}`);
      assert.ok(x.text <= x.room, `${lang}: ${x.id} cuts "${x.label}": ${JSON.stringify(x)}`);
    }
    if (opened) {
      await shot(`filters-open-${lang}.png`);
      await (await t('filters-toggle')).click();
    }
    return m;
  };
  const usersOf = async () => {
    const b = await (await fetch(`${DEVTENANT}/_devtenant/users`)).json();
    return Array.isArray(b) ? b : (b.value ?? b.users ?? []);
  };
  const approvedCount = async () => {
    const m = (await (await fetch(`${must('ADMIN_URL')}/metrics`)).text()).match(/guestlist_decisions_total\{status="approved"\} (\d+)/);
    return m ? Number(m[1]) : 0;
  };
  // devtenant records every Graph call it receives (GET/DELETE /_devtenant/graph-calls).
  const graphCalls = async () => (await (await fetch(`${DEVTENANT}/_devtenant/graph-calls`)).json()).value;
  const forgetGraphCalls = async () => fetch(`${DEVTENANT}/_devtenant/graph-calls`, { method: 'DELETE' });
  const rowIds = async () => {
    const ids = [];
    for (const r of await browser.$$('[data-testid="queue-row"]')) ids.push(await r.getAttribute('data-id'));
    return ids;
  };
  // Approve is enabled again (the guard after a decision is over) on the detail of `id`.
  const approveReady = async (id) =>
    waitFor(
      async () => {
        const d = await browser.$(`[data-testid="detail"][data-id="${id}"]`);
        if (!(await d.isExisting())) return false;
        const b = await t('approve-button');
        return (await b.isExisting()) && (await b.isEnabled());
      },
      10000,
      `Approve of ${id} did not become available`,
    );
  const stillPending = async (id, what) => {
    const row = await browser.$(`[data-testid="queue-row"][data-id="${id}"]`);
    assert.ok(await row.isExisting(), `${what} is still in the queue`);
    assert.equal(await row.$('[data-testid="queue-row-outbox"]').isExisting(), false, `${what} has no decision`);
  };

  return { t, attr, shot, waitFor, axeCheck, focused, filterLabelsWhole, usersOf, approvedCount, graphCalls, forgetGraphCalls, rowIds, approveReady, stillPending };
}
