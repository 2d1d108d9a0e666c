// What the window E2E (tests/e2e/run.mjs) drives outside the window: sign-ups through the
// approval API's connector endpoint (docs/CONTRACTS.md §1), the OS notifications (dbus-monitor's
// log of Notify calls, guestlist-notifyd's control: what it showed, and invoking an action as a
// click would), a second launch of the app with a link (what the desktop does for a click on a
// guestlist:// link), and stopping and restarting guestlist-server and devtenant (the network-off
// steps). The environment is the one scripts/e2e.sh sets (see run.mjs's header); each variable is
// read when first used.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { must } from './helpers.mjs';

/**
 * The outside-world drivers bound to `app` (the app binary's absolute path), `out` (the
 * artifacts folder: the restarted processes' logs go there), `devtenant` (devtenant's base URL)
 * and `waitFor(fn, timeoutMs, message)` (from helpers.mjs).
 */
export function outside({ app, out, devtenant, waitFor }) {
  /** A self-service sign-up through the connector (Basic auth), federated with `issuer`. */
  const signUp = async (email, displayName, issuer, issuerAssignedId) => {
    const basic = 'Basic ' + Buffer.from(`${must('GUESTLIST_CONNECTOR_USERNAME')}:${must('GUESTLIST_CONNECTOR_PASSWORD')}`).toString('base64');
    const [givenName, ...rest] = displayName.split(' ');
    const r = await fetch(`${must('API_URL')}/connectors/request-approval`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: basic },
      body: JSON.stringify({
        email,
        displayName,
        givenName,
        surname: rest.join(' '),
        identities: [{ signInType: 'federated', issuer, issuerAssignedId }],
      }),
    });
    assert.equal(r.status, 200, `request-approval answered for ${email}`);
  };

  /** The Notify calls on the app's session bus so far, one dbus-monitor block each. */
  const notifyCalls = () => {
    const monitorLog = must('DBUS_MONITOR_LOG');
    const text = fs.existsSync(monitorLog) ? fs.readFileSync(monitorLog, 'utf8') : '';
    // One block per message: the header line, then its arguments.
    return text.split(/\n(?=\S)/).filter((b) => /member=Notify\b/.test(b));
  };

  // guestlist-notifyd is the notification server: what it was asked to show, and clicks on it.
  /** Every notification guestlist-notifyd was asked to show, oldest first. */
  const shownNotes = async () => (await fetch(`${must('NOTIFYD_URL')}/notifications`)).json();
  /** The first notification from index `from` on that matches `pred`, waiting up to 20 s. */
  const waitNote = async (pred, what, from = 0) => {
    let found = null;
    await waitFor(async () => !!(found = (await shownNotes()).slice(from).find(pred)), 20000, `no Notify call for ${what}`);
    return found;
  };
  /** Invokes `action` on `note` as a click would ("default" is the click on the notification). */
  const click = async (note, action) => {
    const r = await fetch(`${must('NOTIFYD_URL')}/invoke`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: note.id, action }) });
    assert.equal(r.status, 200, `invoking ${action} on notification ${note.id}: ${await r.text()}`);
  };
  /** A notification's action keys (its `actions` alternate key and label). */
  const keysOf = (note) => note.actions.filter((_, i) => i % 2 === 0);

  // What the desktop does for a click on the link: start the app with the URL as its only argument.
  /** A second launch of the app with `arg`; resolves to its exit code (killed after 30 s). */
  const launch = (arg) => new Promise((resolve) => {
    const p = spawn(app, [arg], { env: process.env, stdio: 'ignore' });
    const timer = setTimeout(() => p.kill('SIGKILL'), 30000);
    p.on('exit', (code) => (clearTimeout(timer), resolve(code)));
  });

  const apiUp = async () => fetch(`${must('API_URL')}/healthz`).then((r) => r.ok, () => false);
  const tenantUp = async () => fetch(`${devtenant}/_devtenant/health`).then((r) => r.ok, () => false);
  /** Network off: SIGTERM to guestlist-server and devtenant (pid files from e2e.sh), until both are down. */
  const stopBackends = async () => {
    process.kill(Number(fs.readFileSync(must('SERVER_PID_FILE'), 'utf8').trim()), 'SIGTERM');
    process.kill(Number(fs.readFileSync(must('DEVTENANT_PID_FILE'), 'utf8').trim()), 'SIGTERM');
    await waitFor(async () => !(await apiUp()) && !(await tenantUp()), 10000, 'the server or devtenant did not stop');
  };
  const restart = (bin, args, pidFile, log, env) => {
    const p = spawn(bin, args, { stdio: ['ignore', fs.openSync(path.join(out, log), 'w'), fs.openSync(path.join(out, log), 'a')], env });
    p.unref(); // e2e.sh stops it (pid file); node must not wait for it
    fs.writeFileSync(pidFile, String(p.pid));
  };
  /** Network back: devtenant and guestlist-server start again on the same state, until both answer. */
  const restartBackends = async () => {
    // The same tenant kind (DEVTENANT_CONFIG: tenant_kind = "external") on the same state.
    const dtConfig = process.env.DEVTENANT_CONFIG ? ['--config', process.env.DEVTENANT_CONFIG] : [];
    restart(must('DEVTENANT_BIN'), ['--listen', must('DEVTENANT_LISTEN'), ...dtConfig, '--state', must('DEVTENANT_STATE')], must('DEVTENANT_PID_FILE'), 'devtenant-restarted.log', { PATH: process.env.PATH });
    // Only what the server reads: it rejects unknown GUESTLIST_* variables (the app's).
    restart(must('SERVER_BIN'), ['--config', must('SERVER_CONFIG')], must('SERVER_PID_FILE'), 'server-restarted.log', {
      PATH: process.env.PATH,
      GUESTLIST_CONNECTOR_USERNAME: must('GUESTLIST_CONNECTOR_USERNAME'),
      GUESTLIST_CONNECTOR_PASSWORD: must('GUESTLIST_CONNECTOR_PASSWORD'),
    });
    await waitFor(async () => (await tenantUp()) && (await apiUp()), 15000, 'devtenant or the server did not restart');
  };

  return { signUp, notifyCalls, shownNotes, waitNote, click, keysOf, launch, stopBackends, restartBackends };
}
