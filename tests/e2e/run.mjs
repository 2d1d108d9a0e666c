// Guestlist window E2E: drives the real app (tauri-driver → WebKitWebDriver) against devtenant and
// guestlist-server started by scripts/e2e.sh. Asserts on the DOM and on devtenant's directory,
// never on pixels; saves screenshots as artifacts.
//
// Env: E2E_APP (absolute path of the debug binary), DEVTENANT_URL, ARTIFACTS (dir),
//      E2E_MIN_REQUESTS (sign-ups played before the run), DBUS_MONITOR_LOG (dbus-monitor's
//      output on the app's session bus), NOTIFYD_URL (guestlist-notifyd's control: the Notify
//      calls it answered, and invoking an action as a click would), API_URL + SERVER_* and DEVTENANT_* (to stop and restart
//      guestlist-server and devtenant: the network-off step), GUESTLIST_CONNECTOR_* (sign-ups),
//      EXTERNAL_SIGNUP_BIN (an external tenant's sign-up through devtenant's player: external.mjs).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { saveWindowShot } from './snapshot.mjs';
import { connect, helpers, must } from './helpers.mjs';
import { outside } from './outside.mjs';
import { externalFlow } from './external.mjs';
import { escalationFlow } from './escalation.mjs';

const APP = must('E2E_APP');
const DEVTENANT = must('DEVTENANT_URL');
const OUT = process.env.ARTIFACTS ?? 'artifacts/e2e';
const MIN = Number(process.env.E2E_MIN_REQUESTS ?? '3');
fs.mkdirSync(OUT, { recursive: true });

const steps = [];
function step(name) {
  steps.push(name);
  console.log(`e2e: ${name}`);
}

const browser = await connect(APP);

const h = helpers(browser, { out: OUT, devtenant: DEVTENANT });
const { t, attr, shot, waitFor, axeCheck, focused, filterLabelsWhole, usersOf, approvedCount, graphCalls, forgetGraphCalls, rowIds, approveReady, stillPending } = h;
const { signUp, notifyCalls, shownNotes, waitNote, click, keysOf, launch, stopBackends, restartBackends } = outside({ app: APP, out: OUT, devtenant: DEVTENANT, waitFor });

let failed = null;
try {
  step('the window starts on the sign-in screen');
  await (await t('app')).waitForExist({ timeout: 20000 });
  // A language left chosen by an earlier run (the webview keeps it): back to the system's.
  if (await browser.execute(() => localStorage.getItem('guestlist.language') !== null)) {
    await browser.execute(() => { localStorage.removeItem('guestlist.language'); location.reload(); });
    await browser.pause(1000);
    await (await t('app')).waitForExist({ timeout: 20000 });
  }
  assert.equal(await browser.execute(() => document.documentElement.lang), 'en', 'the document language is English (the system is)');
  await waitFor(async () => (await t('signin-screen').isExisting()) || (await t('reviewer').isExisting()), 20000, 'neither sign-in nor queue appeared');
  assert.equal(await (await t('status-bar')).isExisting(), true, 'the status bar is always shown');

  if (await t('signin-screen').isExisting()) {
    await shot('signin.png');
    await axeCheck('sign-in');
    step('settings from the sign-in screen (axe), Cancel goes back');
    await (await t('open-settings')).click();
    await (await t('settings-screen')).waitForExist({ timeout: 5000 });
    await shot('settings.png');
    await axeCheck('settings');
    await (await t('settings-cancel')).click();
    await (await t('signin-screen')).waitForExist({ timeout: 5000 });
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
  await axeCheck('queue and detail');
  step('English at 1,280 px: every filter label is whole');
  await filterLabelsWhole('en');

  step('keyboard: Tab reaches the list (one stop, the cursor row as active descendant) and the detail; PageDown scrolls it');
  await browser.execute(() => document.activeElement?.blur());
  let reachedList = false;
  for (let i = 0; i < 25 && !reachedList; i++) {
    await browser.keys('Tab');
    reachedList = (await focused()) === 'queue-list';
  }
  assert.ok(reachedList, 'Tab never reaches the queue list');
  const active = await attr('queue-list', 'aria-activedescendant');
  assert.ok(active, 'the list names its cursor row (aria-activedescendant)');
  assert.equal(await browser.$(`#${active}`).getAttribute('data-id'), await attr('detail', 'data-id'), 'the active descendant is the row shown');
  await browser.keys('Tab');
  const afterList = await focused();
  assert.ok(!afterList.startsWith('queue-row'), `Tab leaves the list in one stop (went to ${afterList})`);
  let reachedDetail = afterList === 'detail-scroll';
  for (let i = 0; i < 25 && !reachedDetail; i++) {
    await browser.keys('Tab');
    reachedDetail = (await focused()) === 'detail-scroll';
  }
  assert.ok(reachedDetail, 'Tab never reaches the detail');
  const scrolled = () => browser.execute(() => document.querySelector('[data-testid="detail-scroll"]')?.scrollTop ?? 0);
  const canScroll = await browser.execute(() => { const e = document.querySelector('[data-testid="detail-scroll"]'); return !!e && e.scrollHeight > e.clientHeight + 4; });
  if (canScroll) {
    await browser.keys('PageDown');
    await waitFor(async () => (await scrolled()) > 0, 3000, 'PageDown did not scroll the focused detail');
    await browser.pause(300);
    const down = await scrolled();
    await browser.keys('PageUp');
    await waitFor(async () => (await scrolled()) < down, 3000, `PageUp did not scroll the detail back (at ${down})`);
  }

  step('keyboard: j/k move the cursor, ? shows the help, Esc closes it');
  const firstId = await (await t('detail')).getAttribute('data-id');
  await browser.keys('j');
  await waitFor(async () => (await (await t('detail')).getAttribute('data-id')) !== firstId, 5000, 'j did not move the cursor');
  await browser.keys('k');
  await waitFor(async () => (await (await t('detail')).getAttribute('data-id')) === firstId, 5000, 'k did not move back');
  await browser.execute(() => document.querySelector('[data-testid="queue-list"]')?.focus());
  await browser.keys('?');
  await (await t('help-overlay')).waitForDisplayed({ timeout: 3000 });
  await axeCheck('help');
  for (let i = 0; i < 4; i++) {
    await browser.keys('Tab');
    // (With one control in it, Tab may leave to the document itself; never to the page behind.)
    assert.match(await focused(), / in help-overlay$|^body$/, 'Tab stays in the help dialog');
  }
  await browser.keys('Escape');
  await (await t('help-overlay')).waitForExist({ reverse: true, timeout: 3000 });
  assert.equal(await focused(), 'queue-list', 'closing the help gives focus back to the list');

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
  // Grants on approval (issue 14 §1; scripts/e2e.sh's [[policy.grants]] for Facebook sign-ups).
  assert.match(calls, /POST \/groups\/b0b0b0b0-0001-4000-8000-0000000fab01\/members\/\$ref/, 'the plan shows the group membership call');
  assert.match(calls, /POST \/users\/\{id\}\/appRoleAssignments/, 'the app role assignment call');
  assert.match(calls, /POST \/users\/\{id\}\/sponsors\/\$ref/, 'the sponsor call');
  const fbPlan = await (await t('if-approved-text')).getText();
  assert.match(fbPlan, /added to group Partners-Fabrikam/, `the plan sentence names the group (${fbPlan})`);
  assert.match(fbPlan, /app role \S+ in \S+/, `the plan sentence names the app role (${fbPlan})`);
  assert.match(fbPlan, /sponsor Ada Lovelace \(you\)/, `the plan sentence names the approver as sponsor (${fbPlan})`);
  await browser.keys('Enter');
  await waitFor(async () => (await attr('reviewer', 'data-mode')) === 'open', 3000, 'Enter did not open the request');
  await shot('side-by-side.png');
  await axeCheck('open request');
  await browser.execute(() => {
    const el = document.querySelector('[data-testid="graph-calls"]');
    if (el) el.scrollIntoView({ block: 'start' });
  });
  await shot('graph-calls.png');
  await browser.keys('Escape');
  await waitFor(async () => (await attr('reviewer', 'data-mode')) === 'list', 3000, 'Esc did not go back');

  step('the button says whom it approves; a double-click on Approve decides exactly one person');
  await approveReady(fbId);
  const fbName = await (await t('detail-name')).getText();
  assert.equal((await (await t('approve-button')).getText()).replace(/\s+a$/, ''), `Approve ${fbName}`);
  const order = await rowIds();
  const nextId = order[order.indexOf(fbId) + 1];
  const afterNextId = order[order.indexOf(fbId) + 2];
  assert.ok(nextId && afterNextId, 'two more requests after the Facebook one');
  let approvedBase = await approvedCount();
  let guestBase = (await usersOf()).length;
  // Two clicks 150 ms apart at the same spot: the pointer stays where the next person's
  // Approve button appears.
  await browser.action('pointer').move({ origin: await t('approve-button') }).down().up().pause(150).down().up().perform();
  await waitFor(async () => (await t('toast').isExisting()) && /^Approving .+ in \d+ s/.test(await (await t('toast')).getText()), 5000, 'no "Approving … in N s" toast with Undo');
  assert.match(await (await t('announcer')).getProperty('textContent'), /Approving/, 'the decision is announced (live region)');
  assert.ok(await t('undo-button').isExisting(), 'the toast offers Undo');
  await browser.$(`[data-testid="queue-row"][data-id="${fbId}"]`).waitForExist({ reverse: true, timeout: 30000, timeoutMsg: 'the approved request stayed in the queue' });
  await waitFor(async () => (await t('toast').isExisting()) && /Approved .+: (guest created|linked to an existing account)/.test(await (await t('toast')).getText()), 10000, 'no toast naming the approved person and the outcome');
  await browser.pause(1500); // a second decision would have been sent by now
  assert.equal(await approvedCount(), approvedBase + 1, 'exactly one approval after a double-click');
  assert.equal((await usersOf()).length, guestBase + 1, 'exactly one new guest after a double-click');
  {
    // The new guest holds its grants in devtenant's directory.
    const guest = (await usersOf()).find((u) => (u.mail ?? '').toLowerCase() === (fbEmail ?? '').toLowerCase());
    assert.ok(guest, `the Facebook guest ${fbEmail} is in the directory`);
    const groups = (await (await fetch(`${DEVTENANT}/_devtenant/groups`)).json()).value;
    const partners = groups.find((g) => g.id === 'b0b0b0b0-0001-4000-8000-0000000fab01');
    assert.ok(partners?.members.includes(guest.id), 'the guest is a member of Partners-Fabrikam');
    const roles = (await (await fetch(`${DEVTENANT}/_devtenant/app-role-assignments`)).json()).value;
    assert.ok(roles.some((a) => a.principalId === guest.id && a.appRoleId === 'e0e0e0e0-0001-4000-8000-00000000f00d'), 'the guest holds the portal role');
    const sponsors = (await (await fetch(`${DEVTENANT}/_devtenant/sponsors`)).json()).value;
    assert.ok(sponsors.some((s) => s.userId === guest.id && s.sponsors.length === 1), 'the approver is the guest\'s sponsor');
  }
  await stillPending(nextId, 'the request that came under the pointer');

  step('`a a` 150 ms apart decides exactly one person');
  await approveReady(nextId);
  approvedBase = await approvedCount();
  guestBase = (await usersOf()).length;
  const nextKind = await attr('if-approved', 'data-kind');
  await browser.keys('a');
  await browser.pause(150);
  await browser.keys('a');
  await browser.$(`[data-testid="queue-row"][data-id="${nextId}"]`).waitForExist({ reverse: true, timeout: 30000, timeoutMsg: 'the request approved with `a` stayed in the queue' });
  await browser.pause(1500);
  assert.equal(await approvedCount(), approvedBase + 1, 'exactly one approval after `a a`');
  // One new guest, or none when the approval linked an account that exists by then (the same
  // person signed up through two providers: the first approval made the account).
  const grown = (await usersOf()).length - guestBase;
  assert.ok(grown === 1 || (grown === 0 && nextKind !== undefined), `at most the one guest of that approval (got ${grown})`);
  await stillPending(afterNextId, 'the request after it');

  // ---- approve an Entra ID user ----
  step('open an Entra ID request: invitation plan (POST /invitations + PATCH)');
  // Not one sharing the Facebook guest's e-mail: approving that one reuses the account (by design).
  let enRow = null;
  for (const r of await browser.$$('[data-testid="queue-row"][data-provider="entra"], [data-testid="queue-row"][data-provider="microsoftaccount"]')) {
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
  await approveReady(enId);
  await (await t('approve-button')).click();
  await browser.$(`[data-testid="queue-row"][data-id="${enId}"]`).waitForExist({ reverse: true, timeout: 30000, timeoutMsg: 'the approved Entra request stayed in the queue' });

  // ---- deny one with a reason ----
  step('deny one with `d` and a reason');
  const denyRow = await browser.$('[data-testid="queue-row"]');
  await denyRow.waitForExist({ timeout: 5000, timeoutMsg: 'nothing left to deny' });
  const denyId = await denyRow.getAttribute('data-id');
  await denyRow.click();
  await browser.$(`[data-testid="detail"][data-id="${denyId}"]`).waitForExist({ timeout: 10000 });
  await approveReady(denyId);
  await browser.keys('d');
  await (await t('deny-dialog')).waitForDisplayed({ timeout: 3000 });
  assert.equal(await (await t('deny-confirm')).isEnabled(), false, 'a reason is required');
  await axeCheck('deny dialog');
  assert.equal(await focused(), 'deny-reason in deny-dialog', 'the deny dialog focuses the reason');
  for (let i = 0; i < 8; i++) {
    await browser.keys('Tab');
    assert.match(await focused(), / in deny-dialog$|^body$/, 'Tab stays in the deny dialog (focus trap)');
  }
  await browser.keys('Escape');
  await (await t('deny-dialog')).waitForExist({ reverse: true, timeout: 3000, timeoutMsg: 'Esc after Tab did not close the deny dialog' });
  await browser.keys('d');
  await (await t('deny-dialog')).waitForDisplayed({ timeout: 3000 });
  await shot('deny.png');
  await (await t('deny-reason')).setValue('Unknown company (e2e)');
  await browser.keys('Enter');
  await browser.$(`[data-testid="queue-row"][data-id="${denyId}"]`).waitForExist({ reverse: true, timeout: 30000, timeoutMsg: 'the denied request stayed in the queue' });
  step('the counts went down by four');
  await waitFor(async () => Number(await attr('count-shown', 'data-count')) === total - 4, 10000, 'the count did not drop by 4');

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
    await axeCheck('history');
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
        try {
          for (const r of await browser.$$('[data-testid="queue-row"]')) emails.push(await r.getAttribute('data-email'));
        } catch {
          return false; // the list re-rendered under us (a live update): look again
        }
        return emails.length >= 1 && emails.every((e) => e === email) && Number(await attr('count-shown', 'data-count')) === emails.length;
      },
      5000,
      'search did not narrow the queue to the searched e-mail',
    );
    // With a filter on, Clear joins the toolbar; where that leaves no room for every filter label
    // whole, the filters fold behind the Filters button (ui/src/lib/fold.ts): open it first.
    if (!(await (await t('clear-filters')).isDisplayed())) await (await t('filters-toggle')).click();
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
    await axeCheck('compare');
    await browser.keys('Escape');
    await browser.keys('Escape');
  }

  // ---- escalation (issue 14 §2; tests/e2e/escalation.mjs) ----
  await escalationFlow({ browser, h, signUp, step });

  step('a sign-up arriving while the app runs: the row appears and an OS notification is raised (D-Bus Notify)');
  const liveEmail = 'live.arrival@northwind.example';
  await signUp(liveEmail, 'Live Arrival', 'google.com', 'live-arrival-1');
  const liveRow = await browser.$(`[data-testid="queue-row"][data-email="${liveEmail}"]`);
  await liveRow.waitForExist({ timeout: 20000, timeoutMsg: 'the new request did not appear in the queue' });
  const liveId = await liveRow.getAttribute('data-id');
  await waitFor(async () => notifyCalls().some((b) => b.includes('"Guest request: Live Arrival"')), 20000, 'no D-Bus Notify call for the new request');
  const call = notifyCalls().find((b) => b.includes('"Guest request: Live Arrival"'));
  assert.match(call, /northwind\.example/, `the notification body names the e-mail domain: ${call}`);
  assert.match(call, /Google/, `the notification body names the identity provider: ${call}`);

  step('the notification offers Approve and Open, and a click (the default action)');
  const liveNote = await waitNote((n) => n.summary === 'Guest request: Live Arrival', 'Live Arrival');
  assert.equal(liveNote.body, '@northwind.example · Google', 'body: e-mail domain and identity provider');
  const pairs = Object.fromEntries(keysOf(liveNote).map((k) => [k, liveNote.actions[liveNote.actions.indexOf(k) + 1]]));
  assert.equal(pairs.approve, 'Approve', `actions: ${JSON.stringify(liveNote.actions)}`);
  assert.equal(pairs.open, 'Open', `actions: ${JSON.stringify(liveNote.actions)}`);
  assert.ok('default' in pairs, `a click is an action too: ${JSON.stringify(liveNote.actions)}`);

  step("clicking the notification opens that request's side-by-side view");
  await browser.keys('Escape');
  await waitFor(async () => (await attr('reviewer', 'data-mode')) === 'list', 3000, 'not back on the queue');
  await click(liveNote, 'default');
  await browser.$(`[data-testid="detail"][data-id="${liveId}"]`).waitForExist({ timeout: 10000, timeoutMsg: 'the click did not open the request' });
  await waitFor(async () => (await attr('reviewer', 'data-mode')) === 'open', 5000, 'the request is not open full width');
  await shot('notification-opened.png');
  await browser.keys('Escape');
  await waitFor(async () => (await attr('reviewer', 'data-mode')) === 'list', 3000, 'Esc did not go back');

  step('guestlist://request/<id> from a second launch opens that request here (single instance); hostile links are ignored');
  for (const hostile of [`guestlist://request/${liveId}/approve`, `https://evil.example/request/${liveId}`, `guestlist://request/${liveId}?approve=1`]) {
    assert.equal(await launch(hostile), 0, `the second launch with ${hostile} hands over and exits`);
  }
  assert.equal(await launch(`guestlist://request/${liveId}`), 0, 'the second launch hands the link over and exits');
  await browser.$(`[data-testid="detail"][data-id="${liveId}"]`).waitForExist({ timeout: 10000, timeoutMsg: 'the deep link did not open the request' });
  await waitFor(async () => (await attr('reviewer', 'data-mode')) === 'open', 5000, 'the deep link did not open the request full width');
  await browser.keys('Escape');
  await waitFor(async () => (await attr('reviewer', 'data-mode')) === 'list', 3000, 'Esc did not go back');
  await browser.$(`[data-testid="queue-row"][data-id="${liveId}"]`).waitForExist({ timeout: 3000, timeoutMsg: 'a hostile link decided the request' });

  step("Approve on a new request's notification: the window's plan, one new guest, approved on the server");
  const approvedBefore = await approvedCount();
  const idsBefore = new Set((await usersOf()).map((u) => u.id));
  const naEmail = 'notified.approval@tailspin.example';
  await signUp(naEmail, 'Notified Approval', 'google.com', 'notified-approval-1');
  const naRow = await browser.$(`[data-testid="queue-row"][data-email="${naEmail}"]`);
  await naRow.waitForExist({ timeout: 20000, timeoutMsg: 'the request to approve from its notification did not appear' });
  const naNote = await waitNote((n) => n.summary === 'Guest request: Notified Approval', 'Notified Approval');
  assert.ok(keysOf(naNote).includes('approve'), 'the notification has Approve');
  await click(naNote, 'approve');
  await naRow.waitForExist({ reverse: true, timeout: 30000, timeoutMsg: 'the request approved from its notification stayed in the queue' });
  const result = await waitNote((n) => n.id > naNote.id && /Notified Approval/.test(n.summary), 'the result of the approval');
  assert.match(result.summary, /^(Approved|Approving) Notified Approval$/, `result notification: ${JSON.stringify(result)}`);
  assert.ok(!keysOf(result).includes('approve'), 'a result notification has no Approve button');
  await browser.pause(1500); // anything sent twice would show up by now
  const newGuests = (await usersOf()).filter((u) => !idsBefore.has(u.id));
  assert.deepEqual(newGuests.map((u) => String(u.mail).toLowerCase()), [naEmail], 'exactly one new directory object: the approved guest');
  assert.equal(newGuests[0].userType, 'Guest');
  assert.equal(await approvedCount(), approvedBefore + 1, 'the server recorded exactly one more approval');

  step('an existing-account request: the plan links it, "Will be written" is empty, approving writes nothing to Graph');
  const exEmail = 'already.there@northwind.example';
  const pre = await fetch(`${DEVTENANT}/_devtenant/signups`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: exEmail, displayName: 'Already There', identities: [{ signInType: 'federated', issuer: 'facebook.com', issuerAssignedId: 'already-there-fb' }] }),
  });
  assert.equal(pre.status, 201, 'devtenant made the existing account');
  await signUp(exEmail, 'Already There', 'google.com', 'already-there-google');
  const exRow = await browser.$(`[data-testid="queue-row"][data-email="${exEmail}"]`);
  await exRow.waitForExist({ timeout: 20000, timeoutMsg: 'the existing-account request did not appear' });
  const exId = await exRow.getAttribute('data-id');
  await exRow.click();
  await approveReady(exId);
  await waitFor(async () => (await attr('if-approved', 'data-kind')) === 'existingAccount', 10000, 'the plan does not link the existing account');
  assert.match(await (await t('if-approved')).getText(), /Links the existing account .* nothing is written/);
  for (const r of await browser.$$('[data-testid="attribute-row"] td.write')) {
    assert.equal((await r.getText()).trim(), '—', '"Will be written" is empty');
  }
  const exCalls = await (await t('graph-calls')).getText();
  assert.doesNotMatch(exCalls, /POST|PATCH/, 'no write in the plan shown');
  await browser.keys('Enter');
  await waitFor(async () => (await attr('reviewer', 'data-mode')) === 'open', 3000, 'Enter did not open the request');
  await shot('existing-account.png');
  await browser.keys('Escape');
  await forgetGraphCalls();
  await (await t('approve-button')).click();
  await exRow.waitForExist({ reverse: true, timeout: 30000, timeoutMsg: 'the existing-account request stayed in the queue' });
  const exWrites = (await graphCalls()).filter((c) => c.method !== 'GET');
  assert.deepEqual(exWrites, [], 'no Graph write when approving an existing account');

  // ---- an external tenant's sign-up, for one person (issue 17; tests/e2e/external.mjs) ----
  await externalFlow({ browser, h, out: OUT, devtenant: DEVTENANT, step });

  step('Undo: nothing is written and the request is pending again');
  const unEmail = 'undo.me@litware.example';
  await signUp(unEmail, 'Undo Me', 'google.com', 'undo-me-1');
  const unRow = await browser.$(`[data-testid="queue-row"][data-email="${unEmail}"]`);
  await unRow.waitForExist({ timeout: 20000, timeoutMsg: 'the request to undo did not appear' });
  const unId = await unRow.getAttribute('data-id');
  await unRow.click();
  await approveReady(unId);
  await forgetGraphCalls();
  const unApprovedBefore = await approvedCount();
  await (await t('approve-button')).click();
  await (await t('undo-button')).waitForDisplayed({ timeout: 5000, timeoutMsg: 'no Undo in the toast' });
  await (await t('undo-button')).click();
  await waitFor(async () => (await t('toast').isExisting()) && /Undone/.test(await (await t('toast')).getText()), 5000, 'no "Undone" toast');
  await browser.pause(7000); // past the undo window
  assert.deepEqual((await graphCalls()).filter((c) => c.method !== 'GET'), [], 'nothing was written');
  assert.equal((await usersOf()).filter((u) => String(u.mail).toLowerCase() === unEmail).length, 0, 'no account for the undone approval');
  assert.equal(await approvedCount(), unApprovedBefore, 'no approval reported');
  await stillPending(unId, 'the undone request');

  step('a burst of sign-ups becomes one summary notification; its click shows the queue');
  const before = (await shownNotes()).length;
  await Promise.all(Array.from({ length: 6 }, (_, i) => signUp(`burst.${i}@wingtip.example`, `Burst Person${i}`, i % 2 ? 'facebook.com' : 'google.com', `burst-${i}`)));
  // (The first sync after sign-in announced the sign-ups played before the run as a summary too.)
  const summary = await waitNote((n) => /^\d+ new guest requests$/.test(n.summary), 'a summary of the burst', before);
  assert.deepEqual(keysOf(summary), ['default'], `a summary is only clicked, no Approve/Open: ${JSON.stringify(summary.actions)}`);
  assert.match(summary.body, /Facebook|Google/, `the summary names the providers: ${summary.body}`);
  const burstCalls = (await shownNotes()).slice(before);
  assert.ok(burstCalls.length < 6, `the burst did not get a notification per request (${burstCalls.length} calls)`);
  await (await browser.$('[data-testid="queue-row"]')).click();
  await browser.keys('Enter');
  await waitFor(async () => (await attr('reviewer', 'data-mode')) === 'open', 3000, 'Enter did not open a request');
  await click(summary, 'default');
  await waitFor(async () => (await attr('reviewer', 'data-mode')) === 'list', 10000, "the summary's click did not show the queue");

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
  // ---- network off: decisions queue up and drain when the approval API and the tenant are back ----
  step('network off: pick three requests whose accounts do not exist yet (the directory check says so)');
  const knownMails = new Set(users.map(mailOf));
  const picked = [];
  const candidates = [];
  for (const r of await browser.$$('[data-testid="queue-row"]')) {
    candidates.push({ id: await r.getAttribute('data-id'), email: String(await r.getAttribute('data-email')).toLowerCase() });
  }
  for (const c of candidates) {
    if (knownMails.has(c.email) || picked.some((p) => p.email === c.email) || c.email === 'undo.me@litware.example') continue;
    await (await browser.$(`[data-testid="queue-row"][data-id="${c.id}"]`)).click();
    await browser.$(`[data-testid="detail"][data-id="${c.id}"]`).waitForExist({ timeout: 10000 });
    let check = '';
    await waitFor(async () => /No existing account|Existing account found/.test((check = await (await t('directory-check')).getText())), 10000, `no directory check for ${c.email}`);
    if (!/No existing account/.test(check)) continue; // approving it would reuse an account (by design)
    picked.push(c);
    if (picked.length === 3) break;
  }
  assert.equal(picked.length, 3, 'three requests with no existing account to decide offline');

  step('network off: guestlist-server and devtenant stop; the status bar says offline with the error code');
  await stopBackends();
  await browser.keys('r');
  await waitFor(async () => (await attr('status-online', 'data-online')) === 'false', 15000, 'the status bar did not turn offline');
  await (await t('status-error')).waitForExist({ timeout: 5000 });
  assert.equal(await attr('status-error', 'data-code'), 'network.offline');
  assert.ok(Number(await attr('count-shown', 'data-count')) >= 3, 'the cached queue is still there offline');

  step('offline: approve two requests and deny one in the window; all three are queued');
  const [ap1, ap2, den] = picked;
  const openRow = async (id) => {
    await (await browser.$(`[data-testid="queue-row"][data-id="${id}"]`)).click();
    await browser.$(`[data-testid="detail"][data-id="${id}"]`).waitForExist({ timeout: 10000 });
  };
  const queuedToast = async (what) => {
    await waitFor(async () => (await t('toast').isExisting()) && (await attr('toast', 'data-tone')) === 'warn' && /queued/.test(await (await t('toast')).getText()), 10000, `no "queued" toast for ${what}`);
  };
  for (const p of [ap1, ap2]) {
    await openRow(p.id);
    await approveReady(p.id);
    await (await t('approve-button')).click();
    await queuedToast(`the approval of ${p.email}`);
  }
  await openRow(den.id);
  await approveReady(den.id);
  await browser.keys('d');
  await (await t('deny-reason')).waitForDisplayed({ timeout: 3000 });
  await (await t('deny-reason')).setValue('Decided offline (e2e)');
  await browser.keys('Enter');
  await queuedToast(`the denial of ${den.email}`);
  await waitFor(async () => (await t('status-queued').isExisting()) && /^3 queued/.test(await (await t('status-queued')).getText()), 10000, 'the status bar does not count 3 queued decisions');
  await shot('offline.png');
  await axeCheck('offline');

  step('network back: devtenant and guestlist-server restart (same state); the outbox drains');
  await restartBackends();
  await browser.keys('r');
  await waitFor(async () => (await attr('status-online', 'data-online')) === 'true', 20000, 'the status bar did not turn online');
  for (const p of picked) {
    await browser.$(`[data-testid="queue-row"][data-id="${p.id}"]`).waitForExist({ reverse: true, timeout: 30000, timeoutMsg: `the queued decision on ${p.email} was not sent` });
  }
  await (await t('status-queued')).waitForExist({ reverse: true, timeout: 10000, timeoutMsg: 'the status bar still counts queued decisions' });

  step('exactly the expected directory objects and decisions');
  const after = await (await fetch(`${DEVTENANT}/_devtenant/users`)).json();
  const afterUsers = Array.isArray(after) ? after : (after.value ?? after.users ?? []);
  fs.writeFileSync(path.join(OUT, 'directory-after-offline.json'), JSON.stringify(afterUsers, null, 2));
  const beforeIds = new Set(users.map((u) => u.id));
  const created = afterUsers.filter((u) => !beforeIds.has(u.id));
  assert.deepEqual(created.map(mailOf).sort(), [ap1.email, ap2.email].sort(), 'one new account per offline approval, none for the denial');
  assert.ok(created.every((u) => u.userType === 'Guest'), 'the new accounts are guests');
  // The restarted server's counters saw exactly these decisions.
  const metrics = await (await fetch(`${must('ADMIN_URL')}/metrics`)).text();
  fs.writeFileSync(path.join(OUT, 'metrics-after-offline.txt'), metrics);
  assert.match(metrics, /guestlist_decisions_total\{status="approved"\} 2\n/, 'two approvals reported');
  assert.match(metrics, /guestlist_decisions_total\{status="denied"\} 1\n/, 'one denial reported');

  step('sign out offers to wipe the cached requests');
  await (await t('signout-button')).click();
  await (await t('signout-dialog')).waitForDisplayed({ timeout: 3000 });
  await axeCheck('sign-out dialog');
  assert.equal(await (await t('signout-wipe')).isSelected(), true, 'wiping is proposed by default');
  await (await t('signout-confirm')).click();
  await (await t('signin-screen')).waitForExist({ timeout: 10000, timeoutMsg: 'sign-out did not return to the sign-in screen' });
  await axeCheck('signed out');

  // ---- the main path once in French ----
  step('French: chosen in settings, it applies at once and is kept on Save');
  await (await t('open-settings')).click();
  await (await t('settings-screen')).waitForExist({ timeout: 5000 });
  await (await t('setting-language')).selectByAttribute('value', 'fr');
  await waitFor(async () => (await browser.execute(() => document.documentElement.lang)) === 'fr', 3000, 'the document language did not become fr');
  assert.equal(await (await browser.$('[data-testid="settings-screen"] h1')).getText(), 'Paramètres');
  await axeCheck('settings (fr)');
  await (await t('settings-save')).click();
  await (await t('signin-screen')).waitForExist({ timeout: 5000 });
  assert.equal(await (await t('signin-button')).getText(), 'Se connecter avec Microsoft');
  await shot('signin-fr.png');
  await axeCheck('sign-in (fr)');
  step('French: sign in, the queue, the status bar and a request in French');
  await (await t('signin-button')).click();
  await (await t('reviewer')).waitForExist({ timeout: 30000, timeoutMsg: 'sign-in (fr) did not complete' });
  await waitFor(async () => (await t('count-shown').isExisting()) && Number(await attr('count-shown', 'data-count')) > 0, 30000, 'the queue (fr) did not fill');
  assert.match(await (await t('count-shown')).getText(), /^\d+ demandes?$/, 'the count is in French');
  await waitFor(async () => (await (await t('status-online')).getText()).includes('En ligne'), 15000, 'the status bar is not in French');
  await (await browser.$('[data-testid="queue-row"]')).click();
  await (await t('detail')).waitForExist({ timeout: 10000 });
  await waitFor(async () => (await t('approve-button').isExisting()) && (await (await t('approve-button')).isEnabled()), 10000, 'Approve (fr) did not become available');
  await shot('queue-fr.png');
  await axeCheck('queue and detail (fr)');
  step('French at 1,280 px: every filter label is whole');
  const frFilters = await filterLabelsWhole('fr');
  assert.equal(frFilters.window, 1280, 'the window is 1,280 px wide');
  step('French: a new request\'s notification, its buttons, and the stored language are French');
  const frData = must('GUESTLIST_DATA_DIR');
  assert.equal(fs.readFileSync(path.join(frData, 'ui-language'), 'utf8'), 'fr', 'the shell keeps the UI language for the next start');
  const frSeen = (await shownNotes()).length;
  await signUp('arrivee.francaise@northwind.example', 'Arrivée Française', 'google.com', 'arrivee-francaise-1');
  const frNote = await waitNote((n) => n.summary === 'Demande d’invité : Arrivée Française', 'the French notification', frSeen);
  const frPairs = Object.fromEntries(keysOf(frNote).map((k) => [k, frNote.actions[frNote.actions.indexOf(k) + 1]]));
  assert.equal(frPairs.approve, 'Approuver', `French buttons: ${JSON.stringify(frNote.actions)}`);
  assert.equal(frPairs.open, 'Ouvrir', `French buttons: ${JSON.stringify(frNote.actions)}`);
  step('French: the deny dialog names the person and says what they will see');
  const frName = await (await t('detail-name')).getText();
  assert.equal((await (await t('approve-button')).getText()).replace(/\s+a$/, ''), `Approuver ${frName}`, 'the button is in French');
  await browser.keys('d');
  await (await t('deny-dialog')).waitForDisplayed({ timeout: 3000 });
  assert.equal(await (await browser.$('#deny-dialog-title')).getText(), `Refuser ${frName}`);
  assert.match(await (await t('deny-sees')).getText(), new RegExp(`${frName.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} verra une page`));
  await shot('deny-fr.png');
  await axeCheck('deny dialog (fr)');
  await browser.keys('Escape');
  await (await t('deny-dialog')).waitForExist({ reverse: true, timeout: 3000 });
  await browser.keys('?');
  await (await t('help-overlay')).waitForDisplayed({ timeout: 3000 });
  assert.equal(await (await browser.$('#help-overlay-title')).getText(), 'Raccourcis clavier');
  await axeCheck('help (fr)');
  await browser.keys('Escape');
  await (await t('help-overlay')).waitForExist({ reverse: true, timeout: 3000 });
  step('Swedish at 1,280 px: every filter label is whole, and the shell follows the language');
  await (await t('settings-button')).click();
  await (await t('settings-screen')).waitForExist({ timeout: 5000 });
  await (await t('setting-language')).selectByAttribute('value', 'sv');
  await waitFor(async () => (await browser.execute(() => document.documentElement.lang)) === 'sv', 3000, 'the document language did not become sv');
  await (await t('settings-save')).click();
  await waitFor(async () => (await t('count-shown').isExisting()) && Number(await attr('count-shown', 'data-count')) > 0, 30000, 'the queue (sv) did not come back');
  await filterLabelsWhole('sv');
  await waitFor(async () => fs.readFileSync(path.join(frData, 'ui-language'), 'utf8') === 'sv', 3000, 'the shell did not keep sv');
  await browser.execute(() => localStorage.removeItem('guestlist.language'));
  step('done');
} catch (e) {
  failed = e;
  try {
    await saveWindowShot(browser, path.join(OUT, 'failure.png'));
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
