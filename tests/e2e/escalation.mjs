// Escalation in the window E2E (issue 14 §2, loose ends of stop 22). scripts/e2e.sh routes
// sign-ups from escalate.example to `Approver.Partners`, escalating to `Approver.Fallback` after
// 4 s, and the server checks every 2 s; Ada (Admin) sees every request.
//
// 1. such a sign-up appears in the queue, then its row gets the "Escalated" marker — text with a
//    glyph, so not colour only, and part of the row's accessible name — when the
//    `request.escalated` event reaches the window;
// 2. the "Escalated only" filter (in the counts bar) is reached with the keyboard (Tab from the
//    toolbar's last control, Sign out) and toggled with Space: the queue then shows escalated requests only; axe-core has nothing
//    serious to say; Space again shows everything.
import assert from 'node:assert/strict';

const EMAIL = 'late.partner@escalate.example';

/**
 * Runs the escalation part against `browser` (the WebdriverIO session on the app, signed in and
 * showing the queue in English), with `h` (helpers.mjs's helpers), `signUp` (outside.mjs) and
 * `step(name)` (run.mjs's step logger).
 */
export async function escalationFlow({ browser, h, signUp, step }) {
  const { t, attr, shot, waitFor, axeCheck, focused } = h;
  const row = `[data-testid="queue-row"][data-email="${EMAIL}"]`;

  step('an escalated request: its queue row says "Escalated" (text, not colour only)');
  await signUp(EMAIL, 'Late Partner', 'google.com', 'late-partner-1');
  await browser.$(row).waitForExist({ timeout: 20000, timeoutMsg: 'the escalate.example request did not appear' });
  const marker = `${row} [data-testid="queue-row-escalated"]`;
  await waitFor(async () => browser.$(marker).isExisting(), 40000, 'the row never showed the Escalated marker');
  const text = await browser.$(marker).getText();
  assert.match(text, /Escalated/, `the marker is text: ${text}`);
  // Screen readers: the option's name (its text) includes the marker's word.
  const name = await browser.execute((sel) => document.querySelector(sel)?.textContent ?? '', row);
  assert.match(name, /Escalated/, `the row's accessible text names the escalation: ${name}`);
  const before = Number(await attr('count-shown', 'data-count'));
  assert.ok(before >= 2, `more than the escalated request is queued (${before})`);

  step('the "Escalated only" filter, by keyboard: Tab from the toolbar, Space; the queue shows escalated requests only');
  await browser.execute(() => document.querySelector('[data-testid="signout-button"]').focus());
  await browser.keys('Tab');
  assert.equal(await focused(), 'filter-escalated', 'Tab from the toolbar reaches the filter');
  await browser.keys(' ');
  await waitFor(
    async () => {
      try {
        const rows = await browser.$$('[data-testid="queue-row"]');
        if (rows.length === 0 || Number(await attr('count-shown', 'data-count')) !== rows.length) return false;
        for (const r of rows) {
          if (!(await r.$('[data-testid="queue-row-escalated"]').isExisting())) return false;
        }
        return rows.length < before;
      } catch {
        return false; // re-rendered under us: look again
      }
    },
    10000,
    'the filter did not narrow the queue to escalated requests',
  );
  assert.equal(await (await t('filter-escalated')).isSelected(), true);
  assert.ok(await browser.$(row).isExisting(), 'the escalated request is listed');
  // With a filter on, Clear joins the toolbar and the filters may fold; a menu left open by an
  // earlier step would cover the rows in the screenshot: close it.
  const toggle = await t('filters-toggle');
  if ((await toggle.getAttribute('aria-expanded')) === 'true') await toggle.click();
  await shot('queue-escalated.png');
  await axeCheck('queue: escalated only');
  // Back on the filter (closing the menu moved the focus), Space turns it off.
  await browser.execute(() => document.querySelector('[data-testid="filter-escalated"]').focus());
  await browser.keys(' ');
  await waitFor(async () => Number(await attr('count-shown', 'data-count')) === before, 10000, 'Space did not turn the filter off');
  if (await (await t('clear-filters')).isExisting()) await (await t('clear-filters')).click();
}
