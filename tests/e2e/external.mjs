// The external-tenant flow in the window E2E, for one person (issue 17 §6). devtenant plays an
// external tenant (scripts/e2e.sh: tenant_kind = "external"); guestlist-external-signup
// (tests/testkit/external_signup.rs) plays her sign-ups through devtenant's user-flow player:
// the custom authentication extensions OnAttributeCollectionStart / …Submit with the bearer
// tokens devtenant issues, then the customer account.
//
// 1. she signs up → blocked at Submit, pending; the request appears in the queue with the
//    External badge;
// 2. the detail's plan sentence says approving lets her finish her sign-up (Entra creates the
//    account then), and the detail plans no Graph call and no written property (no "not
//    written" mark); her provider is `email` ("Email (external tenant)", the identity she signs
//    in with), never Entra ID with its invitation sentence;
// 3. approved with the keyboard → devtenant's Graph log holds no write, no account exists yet;
// 4. she signs up again → Start prefills what she submitted before, Submit continues, devtenant
//    holds exactly one customer account for her e-mail; a third attempt (Google, same e-mail) is
//    blocked at Start.
// Env: EXTERNAL_SIGNUP_BIN, API_URL, ADMIN_URL (and what helpers.mjs reads).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { must } from './helpers.mjs';

/** The person: an e-mail one-time-passcode sign-up with a Swedish name and city. */
const EMAIL = 'linnea.oberg@tailspin-customers.example';
const NAME = 'Linnéa Öberg';
const CITY = 'Umeå';

/**
 * Runs the external-tenant part against `browser` (the WebdriverIO session on the app, signed in
 * and showing the queue in English), with `h` (helpers.mjs's helpers for that session), `out`
 * (the artifacts folder: external-signup.log gets each attempt's transcript), `devtenant`
 * (devtenant's base URL) and `step(name)` (run.mjs's step logger).
 */
export async function externalFlow({ browser, h, out, devtenant, step }) {
  const { t, attr, shot, waitFor, axeCheck, approveReady, approvedCount, graphCalls, forgetGraphCalls, usersOf } = h;
  const transcript = path.join(out, 'external-signup.log');

  /** One sign-up through the extensions (guestlist-external-signup's JSON answer), 60 s at most. */
  const play = (what, person) =>
    new Promise((resolve, reject) => {
      const p = spawn(must('EXTERNAL_SIGNUP_BIN'), [], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => p.kill('SIGKILL'), 60000);
      p.on('error', (e) => (clearTimeout(timer), reject(e)));
      p.on('close', (code) => {
        clearTimeout(timer);
        if (code !== 0) return reject(new Error(`guestlist-external-signup (${what}) exited with ${code}: ${stderr}`));
        let r;
        try {
          r = JSON.parse(stdout);
        } catch {
          return reject(new Error(`guestlist-external-signup (${what}) did not answer JSON: ${stdout}`));
        }
        fs.appendFileSync(transcript, `# ${what}: ${r.outcome}\n${r.transcript.join('\n')}\n`);
        resolve(r);
      });
      p.stdin.end(JSON.stringify({ api: must('API_URL'), tenant: devtenant, ...person }));
    });
  const emailSignUp = (typed) => ({ provider: 'email', claims: { email: EMAIL, ui_locales: 'sv-SE' }, typed });
  // Her accounts in devtenant's directory, by mail or by any identity's issuerAssignedId.
  const accounts = async () =>
    (await usersOf()).filter(
      (u) => String(u.mail ?? '').toLowerCase() === EMAIL || (u.identities ?? []).some((i) => String(i.issuerAssignedId ?? '').toLowerCase() === EMAIL),
    );
  const writes = async () => (await graphCalls()).filter((c) => c.method !== 'GET');

  step('external tenant: a person signs up through the custom authentication extensions and is blocked pending approval');
  await forgetGraphCalls();
  const first = await play('first attempt', emailSignUp({ displayName: NAME, givenName: 'Linnéa', surname: 'Öberg', city: CITY }));
  assert.equal(first.outcome, 'blocked', `the first attempt is blocked: ${JSON.stringify(first)}`);
  assert.equal(first.event, 'OnAttributeCollectionSubmit', `blocked at Submit: ${JSON.stringify(first)}`);
  assert.deepEqual(await accounts(), [], 'no account before approval');

  step('external tenant: the request appears in the queue with the External badge');
  const row = await browser.$(`[data-testid="queue-row"][data-email="${EMAIL}"]`);
  await row.waitForExist({ timeout: 20000, timeoutMsg: 'the external sign-up did not appear in the queue' });
  const id = await row.getAttribute('data-id');
  const badge = await row.$('[data-testid="queue-row-flow"]');
  assert.equal(await badge.getAttribute('data-flow'), 'external', 'the row is marked as the external-tenant flow');
  assert.equal((await badge.getText()).trim(), 'External', 'the row shows the External badge');

  step('external tenant: the plan says approving lets her finish her sign-up, and nothing is written');
  await row.click();
  await approveReady(id);
  assert.equal(await attr('detail-flow', 'data-flow'), 'external', 'the detail is marked external');
  assert.equal((await (await t('detail-flow')).getText()).trim(), 'External');
  await waitFor(async () => (await attr('if-approved', 'data-kind')) === 'userFlow', 10000, 'the plan is not the user-flow plan');
  assert.equal(
    await (await t('if-approved-text')).getText(),
    `Approve lets ${NAME} finish their sign-up; Entra creates their account then`,
    'the plan sentence',
  );
  assert.match(await attr('detail-flow', 'title'), /approval writes nothing to the directory; the person comes back and finishes signing up/);
  assert.equal((await browser.$$('[data-testid="graph-calls"] pre.call')).length, 0, 'no Graph call in the plan shown');
  for (const cell of await browser.$$('[data-testid="attribute-row"] td.write')) {
    assert.equal((await cell.getText()).trim(), '—', '"Will be written" is empty, with no "not written" mark');
  }
  for (const r of await browser.$$('[data-testid="attribute-row"]')) {
    assert.equal(await r.getAttribute('data-mark'), 'same', 'no attribute row is marked (nothing is written by approval)');
  }
  // Her e-mail account is a local account of the external tenant: its own provider, shown with
  // the identity she signs in with, never as an Entra ID user whom approval invites.
  assert.equal(await row.getAttribute('data-provider'), 'email', 'the queue files her under the e-mail provider');
  assert.equal(await attr('detail-provider', 'data-provider'), 'email');
  assert.equal((await (await t('detail-provider')).getText()).trim(), 'Email (external tenant)', 'the provider label');
  const identityText = await (await t('identity-block')).getText();
  assert.match(identityText, /signInType\s+email/, `the identity she signs in with: ${identityText}`);
  assert.match(identityText, new RegExp(EMAIL.replace(/[.]/g, '\\.')), `her issuerAssignedId: ${identityText}`);
  const detailText = await (await t('detail')).getText();
  assert.doesNotMatch(detailText, /Approval sends an invitation/, 'no invitation sentence');
  assert.doesNotMatch(detailText, /Entra ID/, 'not shown as an Entra ID user');
  assert.equal(await (await t('invitation-block')).isExisting(), false, 'no invitation block');
  assert.equal(
    (await (await t('none-skipped')).getText()).trim(),
    'None — approval writes nothing; Entra creates the account with what the person submits when they finish signing up.',
    'no claim is "written" or "skipped" by approval',
  );
  assert.equal((await (await t('no-graph-calls')).getText()).trim(), 'None: approval only records the decision on the server.');
  await browser.keys('Enter');
  await waitFor(async () => (await attr('reviewer', 'data-mode')) === 'open', 3000, 'Enter did not open the request');
  await shot('external-plan.png');
  await axeCheck('external request');
  await browser.keys('Escape');
  await waitFor(async () => (await attr('reviewer', 'data-mode')) === 'list', 3000, 'Esc did not go back');

  step('external tenant: approved with `a`; devtenant records no Graph write and no account yet');
  await approveReady(id);
  const approvedBefore = await approvedCount();
  await forgetGraphCalls();
  await browser.keys('a');
  await row.waitForExist({ reverse: true, timeout: 30000, timeoutMsg: 'the approved external request stayed in the queue' });
  await waitFor(
    async () => (await t('toast').isExisting()) && new RegExp(`${NAME}: can now finish their sign-up`).test(await (await t('toast')).getText()),
    10000,
    'no toast saying she can now finish her sign-up',
  );
  await browser.pause(1500); // a second decision or a late write would show by now
  assert.equal(await approvedCount(), approvedBefore + 1, 'the server recorded exactly one approval');
  assert.deepEqual(await writes(), [], 'no Graph write when approving an external-tenant request');
  assert.deepEqual(await accounts(), [], 'Entra creates the account later, not the approval');

  step('external tenant: she signs up again — Start prefills, Submit continues, exactly one customer account');
  const second = await play('second attempt', emailSignUp({ displayName: 'typed again', city: 'typed again' }));
  assert.equal(second.outcome, 'accountCreated', `the second attempt creates her account: ${JSON.stringify(second)}`);
  assert.ok(second.transcript.some((l) => /OnAttributeCollectionStart: setPrefillValues/.test(l)), `Start answers setPrefillValues: ${second.transcript.join(' | ')}`);
  assert.ok(second.transcript.some((l) => /OnAttributeCollectionSubmit: continueWithDefaultBehavior/.test(l)), `Submit continues: ${second.transcript.join(' | ')}`);
  assert.equal(second.pageValues.displayName, NAME, 'the page is prefilled with her name');
  assert.equal(second.pageValues.city, CITY, 'the page is prefilled with her city');
  const created = await accounts();
  assert.equal(created.length, 1, `exactly one account for ${EMAIL}: ${JSON.stringify(created)}`);
  assert.equal(created[0].displayName, NAME, 'with the attributes she submitted the first time');
  assert.equal(created[0].city, CITY);
  assert.notEqual(created[0].userType, 'Guest', 'a customer account, not a guest');
  assert.doesNotMatch(String(created[0].userPrincipalName), /#EXT#/, 'no #EXT# UPN');
  assert.ok(
    (created[0].identities ?? []).some((i) => i.signInType === 'emailAddress' && String(i.issuerAssignedId).toLowerCase() === EMAIL),
    `an emailAddress identity: ${JSON.stringify(created[0].identities)}`,
  );
  assert.deepEqual(await writes(), [], 'still no Graph write: Entra created the account');

  step('external tenant: a third attempt with the same e-mail (Google) is blocked');
  const third = await play('third attempt', {
    provider: 'google',
    claims: { email: EMAIL, ui_locales: 'sv-SE', identities: [{ signInType: 'federated', issuer: 'google.com', issuerAssignedId: 'e2e-linnea-google' }] },
    typed: { displayName: 'Linnéa Ö' },
  });
  assert.equal(third.outcome, 'blocked', `the third attempt is blocked: ${JSON.stringify(third)}`);
  assert.equal(third.event, 'OnAttributeCollectionStart', `blocked at Start: ${JSON.stringify(third)}`);
  assert.equal((await accounts()).length, 1, 'still exactly one account');
  assert.deepEqual(await writes(), [], 'no Graph write');
}
