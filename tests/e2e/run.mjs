// Guestlist window E2E: drives the real app (tauri-driver → WebKitWebDriver) against devtenant and
// guestlist-server started by scripts/e2e.sh. Asserts on the DOM and on devtenant's directory,
// never on pixels; saves screenshots as artifacts.
//
// Env: E2E_APP (absolute path of the debug binary), DEVTENANT_URL, ARTIFACTS (dir),
//      E2E_MIN_REQUESTS (sign-ups played before the run).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { remote } from 'webdriverio';

const APP = must('E2E_APP');
const DEVTENANT = must('DEVTENANT_URL');
const OUT = process.env.ARTIFACTS ?? 'artifacts/e2e';
const MIN = Number(process.env.E2E_MIN_REQUESTS ?? '3');
fs.mkdirSync(OUT, { recursive: true });

function must(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

const steps = [];
function step(name) {
  steps.push(name);
  console.log(`e2e: ${name}`);
}

const browser = await remote({
  hostname: '127.0.0.1',
  port: Number(process.env.E2E_WD_PORT ?? '4444'),
  logLevel: 'warn',
  connectionRetryCount: 0,
  capabilities: {
    browserName: 'wry',
    'wdio:enforceWebDriverClassic': true,
    'tauri:options': { application: APP },
  },
});

const t = (id, extra = '') => browser.$(`[data-testid="${id}"]${extra}`);
const attr = async (id, name) => (await t(id)).getAttribute(name);
const shot = async (name) => {
  await browser.pause(400); // a screenshot can lag the DOM by a frame
  await browser.saveScreenshot(path.join(OUT, name));
};
const waitFor = (fn, timeout, timeoutMsg) => browser.waitUntil(fn, { timeout, interval: 150, timeoutMsg });

let failed = null;
try {
  step('the window starts on the sign-in screen');
  await (await t('app')).waitForExist({ timeout: 20000 });
  await waitFor(async () => (await t('signin-screen').isExisting()) || (await t('reviewer').isExisting()), 20000, 'neither sign-in nor queue appeared');
  assert.equal(await (await t('status-bar')).isExisting(), true, 'the status bar is always shown');

  if (await t('signin-screen').isExisting()) {
    await shot('signin.png');
    step('sign in through devtenant (login_hint, loopback redirect, PKCE)');
    await (await t('signin-button')).click();
  }
  await (await t('reviewer')).waitForExist({ timeout: 30000, timeoutMsg: 'sign-in did not complete' });
  await waitFor(async () => /ada/i.test(await (await t('user-name')).getAttribute('title')), 10000, 'the toolbar does not show the signed-in approver');

  step(`the queue fills from the approval API (at least ${MIN} pending)`);
  let clickedSync = false;
  await waitFor(
    async () => {
      const c = await t('count-shown');
      if (!(await c.isExisting())) return false;
      const n = Number(await c.getAttribute('data-count'));
      if (n < MIN && !clickedSync) {
        clickedSync = true;
        await (await t('sync-button')).click();
      }
      return n >= MIN;
    },
    30000,
    'the queue did not fill',
  );
  const total = Number(await attr('count-shown', 'data-count'));
  assert.equal(await attr('status-online', 'data-online'), 'true', 'online after sync');
  const rows = await browser.$$('[data-testid="queue-row"]');
  assert.ok(rows.length > 0 && rows.length <= total, 'rows are rendered (virtualised: never more than the total)');

  step('oldest first: row ages are non-increasing from the top');
  // The cursor starts on the first row and the side-by-side view follows it.
  await (await t('detail')).waitForExist({ timeout: 10000 });
  await shot('queue.png');

  step('keyboard: j/k move the cursor, ? shows the help, Esc closes it');
  const firstId = await (await t('detail')).getAttribute('data-id');
  await browser.keys('j');
  await waitFor(async () => (await (await t('detail')).getAttribute('data-id')) !== firstId, 5000, 'j did not move the cursor');
  await browser.keys('k');
  await waitFor(async () => (await (await t('detail')).getAttribute('data-id')) === firstId, 5000, 'k did not move back');
  await browser.keys('?');
  await (await t('help-overlay')).waitForDisplayed({ timeout: 3000 });
  await browser.keys('Escape');
  await (await t('help-overlay')).waitForExist({ reverse: true, timeout: 3000 });

  // ---- approve a Facebook user ----
  step('open a Facebook request: identity block, attribute rows, POST /users plan');
  const fbRow = await browser.$('[data-testid="queue-row"][data-provider="facebook.com"]');
  await fbRow.waitForExist({ timeout: 5000, timeoutMsg: 'no Facebook request in the queue' });
  const fbId = await fbRow.getAttribute('data-id');
  const fbEmail = await fbRow.getAttribute('data-email');
  await fbRow.click();
  await browser.$(`[data-testid="detail"][data-id="${fbId}"]`).waitForExist({ timeout: 10000 });
  const idBlock = await (await t('identity-block')).getText();
  assert.match(idBlock, /facebook\.com/, 'identity block shows the issuer');
  assert.match(idBlock, /issuerAssignedId/);
  const attrRows = await browser.$$('[data-testid="attribute-row"]');
  assert.ok(attrRows.length >= 3, `one row per attribute (got ${attrRows.length})`);
  const calls = await (await t('graph-calls')).getText();
  assert.match(calls, /POST \/users/, 'the plan shows POST /users');
  assert.match(calls, /"userType": "Guest"/, 'with the exact body');
  await browser.keys('Enter');
  await waitFor(async () => (await attr('reviewer', 'data-mode')) === 'open', 3000, 'Enter did not open the request');
  await shot('side-by-side.png');
  await browser.execute(() => {
    const el = document.querySelector('[data-testid="graph-calls"]');
    if (el) el.scrollIntoView({ block: 'start' });
  });
  await shot('graph-calls.png');
  await browser.keys('Escape');
  await waitFor(async () => (await attr('reviewer', 'data-mode')) === 'list', 3000, 'Esc did not go back');

  step('approve it with `a`');
  await browser.keys('a');
  await browser.$(`[data-testid="queue-row"][data-id="${fbId}"]`).waitForExist({ reverse: true, timeout: 30000, timeoutMsg: 'the approved request stayed in the queue' });
  const toast1 = await (await t('toast')).getText();
  assert.match(toast1, /Approved 1 request/, `toast: ${toast1}`);

  // ---- approve an Entra ID user ----
  step('open an Entra ID request: invitation plan (POST /invitations + PATCH)');
  // Not one sharing the Facebook guest's e-mail: approving that one reuses the account (by design).
  let enRow = null;
  for (const r of await browser.$$('[data-testid="queue-row"][data-provider="entra"]')) {
    if ((await r.getAttribute('data-email')) !== fbEmail) {
      enRow = r;
      break;
    }
  }
  assert.ok(enRow, 'no Entra ID request with a fresh e-mail in the queue');
  const enId = await enRow.getAttribute('data-id');
  const enEmail = await enRow.getAttribute('data-email');
  await enRow.click();
  await browser.$(`[data-testid="detail"][data-id="${enId}"]`).waitForExist({ timeout: 10000 });
  const enCalls = await (await t('graph-calls')).getText();
  assert.match(enCalls, /POST \/invitations/);
  assert.match(enCalls, /PATCH \/users\//);
  step('approve it with the button');
  await (await t('approve-button')).click();
  await browser.$(`[data-testid="queue-row"][data-id="${enId}"]`).waitForExist({ reverse: true, timeout: 30000, timeoutMsg: 'the approved Entra request stayed in the queue' });

  // ---- deny one with a reason ----
  step('deny one with `d` and a reason');
  const denyRow = await browser.$('[data-testid="queue-row"]');
  await denyRow.waitForExist({ timeout: 5000, timeoutMsg: 'nothing left to deny' });
  const denyId = await denyRow.getAttribute('data-id');
  await denyRow.click();
  await browser.$(`[data-testid="detail"][data-id="${denyId}"]`).waitForExist({ timeout: 10000 });
  await browser.keys('d');
  await (await t('deny-dialog')).waitForDisplayed({ timeout: 3000 });
  assert.equal(await (await t('deny-confirm')).isEnabled(), false, 'a reason is required');
  await (await t('deny-reason')).setValue('Unknown company (e2e)');
  await browser.keys('Enter');
  await browser.$(`[data-testid="queue-row"][data-id="${denyId}"]`).waitForExist({ reverse: true, timeout: 30000, timeoutMsg: 'the denied request stayed in the queue' });
  const toast3 = await (await t('toast')).getText();
  assert.match(toast3, /Denied 1 request/, `toast: ${toast3}`);

  step('the counts went down by three');
  await waitFor(async () => Number(await attr('count-shown', 'data-count')) === total - 3, 10000, 'the count did not drop by 3');

  step('the status bar shows the decisions as reported');
  await waitFor(async () => {
    const states = [];
    for (const i of await browser.$$('[data-testid="outbox-item"]')) states.push(await i.getAttribute('data-state'));
    return states.filter((s) => s === 'reported').length >= 3 || states.length === 0;
  }, 10000, 'outbox items did not reach "reported"');

  step('the history panel of a pending request shows its audit trail');
  if (Number(await attr('count-shown', 'data-count')) > 0) {
    await (await browser.$('[data-testid="queue-row"]')).click();
    await (await t('detail')).waitForExist({ timeout: 10000 });
    await browser.keys('h');
    await (await t('history-panel')).waitForExist({ timeout: 3000 });
    await (await t('history-entry')).waitForExist({ timeout: 10000, timeoutMsg: 'no history entries' });
    await browser.keys('h');
  }

  step('search with `/` narrows the queue');
  if (Number(await attr('count-shown', 'data-count')) > 0) {
    const email = await (await browser.$('[data-testid="queue-row"]')).getAttribute('data-email');
    await browser.keys('/');
    await (await t('search-input')).setValue(email);
    await waitFor(
      async () => {
        const emails = [];
        for (const r of await browser.$$('[data-testid="queue-row"]')) emails.push(await r.getAttribute('data-email'));
        return emails.length >= 1 && emails.every((e) => e === email) && Number(await attr('count-shown', 'data-count')) === emails.length;
      },
      5000,
      'search did not narrow the queue to the searched e-mail',
    );
    await (await t('clear-filters')).click();
  }

  step('compare: x on two rows, then c');
  if (Number(await attr('count-shown', 'data-count')) >= 2) {
    await (await browser.$('[data-testid="queue-row"]')).click();
    await browser.keys('x');
    await browser.keys('j');
    await browser.keys('x');
    await waitFor(async () => (await t('selection-count').isExisting()) && /2 selected/.test(await (await t('selection-count')).getText()), 3000, 'selection did not reach 2');
    await browser.keys('c');
    await (await t('compare-view')).waitForExist({ timeout: 10000 });
    assert.equal((await browser.$$('[data-testid="compare-column"]')).length, 2);
    await shot('compare.png');
    await browser.keys('Escape');
    await browser.keys('Escape');
  }

  step("devtenant's directory holds the Facebook guest account and the Entra ID invitation");
  const res = await fetch(`${DEVTENANT}/_devtenant/users`);
  assert.equal(res.status, 200, 'GET /_devtenant/users');
  const body = await res.json();
  const users = Array.isArray(body) ? body : (body.value ?? body.users ?? []);
  fs.writeFileSync(path.join(OUT, 'directory.json'), JSON.stringify(users, null, 2));
  const mailOf = (u) => String(u.mail ?? '').toLowerCase();
  const hasIssuer = (u, iss) => (u.identities ?? []).some((i) => String(i.issuer).toLowerCase() === iss);
  // The generated people can share an e-mail across providers: match on the identity too.
  const fbUser = users.find((u) => mailOf(u) === fbEmail.toLowerCase() && hasIssuer(u, 'facebook.com'));
  assert.ok(fbUser, `no directory user with mail ${fbEmail} and a facebook.com identity`);
  assert.equal(fbUser.userType, 'Guest');
  assert.equal(fbUser.accountEnabled, true);
  const enUser = users.find(
    (u) => u.id !== fbUser.id && mailOf(u) === enEmail.toLowerCase() && !hasIssuer(u, 'facebook.com') && !hasIssuer(u, 'google.com'),
  );
  assert.ok(enUser, `no invited user for ${enEmail}`);
  assert.equal(enUser.userType, 'Guest');
  assert.match(String(enUser.userPrincipalName), /#EXT#@/, 'the invited user has an #EXT# UPN');
  // ---- offline: decisions queue up and drain when the approval API is back ----
  step('offline: the approval API goes away; the status bar says so with the error code');
  const pidFile = must('SERVER_PID_FILE');
  const apiUp = async () => fetch(`${must('API_URL')}/healthz`).then((r) => r.ok, () => false);
  process.kill(Number(fs.readFileSync(pidFile, 'utf8').trim()), 'SIGTERM');
  await waitFor(async () => !(await apiUp()), 10000, 'the server did not stop');
  await browser.keys('r');
  await waitFor(async () => (await attr('status-online', 'data-online')) === 'false', 15000, 'the status bar did not turn offline');
  await (await t('status-error')).waitForExist({ timeout: 5000 });
  assert.equal(await attr('status-error', 'data-code'), 'network.offline');
  const before = Number(await attr('count-shown', 'data-count'));
  assert.ok(before > 0, 'the cached queue is still there offline');

  step('offline: a denial is queued, shown in the status bar and on the row');
  const offRow = await browser.$('[data-testid="queue-row"]');
  const offId = await offRow.getAttribute('data-id');
  await offRow.click();
  await browser.$(`[data-testid="detail"][data-id="${offId}"]`).waitForExist({ timeout: 10000 });
  await browser.keys('d');
  await (await t('deny-reason')).waitForDisplayed({ timeout: 3000 });
  await (await t('deny-reason')).setValue('Decided offline (e2e)');
  await browser.keys('Enter');
  await waitFor(async () => (await t('toast').isExisting()) && (await attr('toast', 'data-tone')) === 'warn', 10000, 'no "queued" toast');
  assert.match(await (await t('toast')).getText(), /queued/);
  await (await t('status-queued')).waitForExist({ timeout: 5000, timeoutMsg: 'the status bar does not count the queued decision' });
  await shot('offline.png');

  step('back online: the queued denial is sent and the request leaves the queue');
  const server = spawn(must('SERVER_BIN'), ['--config', must('SERVER_CONFIG')], {
    stdio: ['ignore', fs.openSync(path.join(OUT, 'server-restarted.log'), 'w'), fs.openSync(path.join(OUT, 'server-restarted.log'), 'a')],
    // Only what the server reads: it rejects unknown GUESTLIST_* variables (the app's).
    env: {
      PATH: process.env.PATH,
      GUESTLIST_CONNECTOR_USERNAME: must('GUESTLIST_CONNECTOR_USERNAME'),
      GUESTLIST_CONNECTOR_PASSWORD: must('GUESTLIST_CONNECTOR_PASSWORD'),
    },
  });
  server.unref(); // e2e.sh stops it (server.pid); node must not wait for it
  fs.writeFileSync(pidFile, String(server.pid));
  await waitFor(apiUp, 15000, 'the server did not restart');
  await browser.keys('r');
  await waitFor(async () => (await attr('status-online', 'data-online')) === 'true', 20000, 'the status bar did not turn online');
  await browser.$(`[data-testid="queue-row"][data-id="${offId}"]`).waitForExist({ reverse: true, timeout: 30000, timeoutMsg: 'the queued denial was not sent' });
  await (await t('status-queued')).waitForExist({ reverse: true, timeout: 10000, timeoutMsg: 'the status bar still counts a queued decision' });
  step('done');
} catch (e) {
  failed = e;
  try {
    await browser.saveScreenshot(path.join(OUT, 'failure.png'));
    fs.writeFileSync(path.join(OUT, 'failure.html'), await browser.getPageSource());
  } catch {
    /* the window may be gone */
  }
} finally {
  await browser.deleteSession().catch(() => {});
}

fs.writeFileSync(path.join(OUT, 'steps.txt'), steps.join('\n') + '\n');
if (failed) {
  console.error(`e2e: FAILED at step "${steps[steps.length - 1]}": ${failed.stack ?? failed}`);
  process.exit(1);
}
console.log(`e2e: ${steps.length} steps passed`);
process.exit(0);
