#!/usr/bin/env bash
# Window E2E of the Guestlist desktop app.
#
# Builds the app with the UI embedded, starts devtenant (emulated Entra tenant) and
# guestlist-server on free ports, plays sign-ups, then under Xvfb + a private D-Bus session
# (unlocked gnome-keyring for the refresh token) starts tauri-driver and runs tests/e2e/run.mjs
# (WebdriverIO 9) against the real window: sign in, approve a Facebook and an Entra ID user,
# deny one, check devtenant's directory; a sign-up arriving while the app runs must raise an OS
# notification with Approve and Open buttons (guestlist-notifyd, tests/testkit/notifyd.rs, is the
# notification server on the private session bus and records every Notify call; dbus-monitor
# records them independently); clicking a notification opens its request in the window, its
# Approve button approves through the window's plan (one new guest, one approval on the server),
# a burst of sign-ups gets one summary whose click shows the queue; then
# the network goes away (guestlist-server and devtenant stopped), two approvals and a denial are
# queued in the window, both come back and the outbox drains to exactly those directory objects
# and decisions. devtenant plays an external tenant (tenant_kind = "external": the workforce
# sign-ups above still go through the API connectors, as `make demo`'s mixed flow), so one person
# also signs up through the custom authentication extensions (issue 17, tests/e2e/external.mjs):
# the request shows the External badge and the user-flow plan, approving it writes nothing in
# Graph, and the person comes back, is prefilled, gets exactly one customer account, and a third
# attempt is blocked. Artifacts (screenshots, logs, directory dump) go to
# artifacts/e2e/; with E2E_UPDATE_DOCS=1 the README's screenshots are copied to docs/screenshots/.
#
# Env: E2E_SIGNUPS (default 12) sign-ups to play; ARTIFACTS (default artifacts/e2e);
# E2E_UPDATE_DOCS=1 (default 0) refreshes docs/screenshots/ after a passing run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${ARTIFACTS:-$ROOT/artifacts/e2e}
SIGNUPS=${E2E_SIGNUPS:-12}
TENANT_ID=4a1e2d3c-5b6f-4789-9abc-def012345678
export PATH="$HOME/.cargo/bin:$PATH"

rm -rf "$OUT"
mkdir -p "$OUT"

log() { printf 'e2e.sh: %s\n' "$*"; }

# ---- dependencies (idempotent, fast when warm) ----
bash scripts/setup.sh e2e
if [ ! -d tests/e2e/node_modules ] || [ tests/e2e/package.json -nt tests/e2e/node_modules/.installed ]; then
  (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed)
fi

# ---- build ----
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
log "building the UI"
(cd ui && npm run build --silent)
log "building devtenant, guestlist-server and the app (UI embedded)"
cargo build -q -p guestlist-devtenant -p guestlist-server --bins
cargo build -q -p guestlist-tests --bin guestlist-notifyd --bin guestlist-external-signup
cargo build -q -p guestlist-desktop --features tauri/custom-protocol
APP="$TARGET/debug/guestlist"
[ -x "$APP" ] || { echo "e2e.sh: $APP missing" >&2; exit 1; }

# ---- services ----
free_port() { python3 "$ROOT/scripts/free-port.py"; } # below the ephemeral port range
DT_PORT=$(free_port)
API_PORT=$(free_port)
WD_PORT=$(free_port)
NATIVE_PORT=$(free_port)
NOTIFYD_PORT=$(free_port)
WORK=$(mktemp -d)
# Private copies of the service binaries: the shared target dir may get another build of them
# while the run goes on, and run.mjs restarts devtenant and the server (network off) on the same
# state (a newer server's migrations would not open under an older binary).
mkdir -p "$WORK/bin"
for b in devtenant guestlist-server guestlist-notifyd guestlist-external-signup; do cp "$TARGET/debug/$b" "$WORK/bin/$b"; done
BIN="$WORK/bin"
PIDS=()
cleanup() {
  if [ -f "$WORK/server.pid" ]; then PIDS+=("$(cat "$WORK/server.pid")"); fi
  if [ -f "$WORK/devtenant.pid" ]; then PIDS+=("$(cat "$WORK/devtenant.pid")"); fi
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_http() { # url, name
  for _ in $(seq 1 150); do
    if curl -fsS -o /dev/null "$1"; then return 0; fi
    sleep 0.2
  done
  echo "e2e.sh: $2 did not come up at $1" >&2
  return 1
}

DEVTENANT_URL="http://127.0.0.1:$DT_PORT"
API_URL="http://127.0.0.1:$API_PORT"
ADMIN_PORT=$(free_port)
ADMIN_URL="http://127.0.0.1:$ADMIN_PORT"
ISSUER="$DEVTENANT_URL/$TENANT_ID/v2.0"

log "devtenant on $DEVTENANT_URL"
# --state: keys, directory and refresh tokens survive the restart of the offline step.
# An external tenant (issue 17): its extensions' tokens come from the ciamlogin issuer; approvers
# still sign in with the usual issuer on 127.0.0.1, and API connectors work as in a workforce one.
printf 'tenant_kind = "external"\n' >"$WORK/devtenant.toml"
"$BIN/devtenant" --listen "127.0.0.1:$DT_PORT" --config "$WORK/devtenant.toml" --state "$WORK/devtenant.json" >"$OUT/devtenant.log" 2>&1 &
echo $! >"$WORK/devtenant.pid"
# run.mjs stops and restarts devtenant too (network off); it keeps its pid in devtenant.pid.
export DEVTENANT_BIN="$BIN/devtenant" DEVTENANT_CONFIG="$WORK/devtenant.toml" DEVTENANT_STATE="$WORK/devtenant.json" DEVTENANT_PID_FILE="$WORK/devtenant.pid" DEVTENANT_LISTEN="127.0.0.1:$DT_PORT"
wait_http "$ISSUER/.well-known/openid-configuration" devtenant
GRAPH_URL=$(curl -fsS "$DEVTENANT_URL/_devtenant/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["graph"])')
CUSTOMER_ISSUER=$(curl -fsS "$DEVTENANT_URL/_devtenant/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["customerIssuer"])')

log "guestlist-server on $API_URL"
. scripts/app-settings.sh
# Grants on approval (issue 14 §1): Facebook sign-ups join devtenant's Partners-Fabrikam group,
# get the Partner portal's role and the approving approver as sponsor (run.mjs checks the plan
# on screen and the directory).
GRANTS='[[policy.grants]]
name = "facebook partners"
identity_providers = ["facebook.com"]
groups = ["b0b0b0b0-0001-4000-8000-0000000fab01"]
app_roles = [{ resource_id = "c0c0c0c0-0001-4000-8000-00000000a11a", app_role_id = "e0e0e0e0-0001-4000-8000-00000000f00d" }]
sponsors = ["approver"]'
# Escalation (issue 14 §2; tests/e2e/escalation.mjs): escalate.example sign-ups escalate after 4 s,
# checked every 2 s. Ada holds Admin, so she sees them before and after.
GRANTS="$GRANTS
[[policy.routes]]
name = \"escalations\"
email_domains = [\"escalate.example\"]
role = \"Approver.Partners\"
fallback_role = \"Approver.Fallback\"
escalate_after_hours = 0.0011

[notifications]
reminder_interval_seconds = 2"
# The custom authentication extensions' tokens (issue 17): devtenant's customer issuer and keys.
GRANTS="$GRANTS
[extension_auth]
issuers = [\"$CUSTOMER_ISSUER\"]
jwks_uri = \"$DEVTENANT_URL/$TENANT_ID/discovery/v2.0/keys\"
audiences = [\"api://guestlist-approvals\"]"
ADMIN_LISTEN="127.0.0.1:$ADMIN_PORT" write_server_config "$WORK/server.toml" "127.0.0.1:$API_PORT" "$WORK/server.db" "$ISSUER" "$GRANTS"
export GUESTLIST_CONNECTOR_USERNAME=connector GUESTLIST_CONNECTOR_PASSWORD=e2e-connector-secret
"$BIN/guestlist-server" --config "$WORK/server.toml" >"$OUT/server.log" 2>&1 &
echo $! >"$WORK/server.pid"
wait_http "$API_URL/healthz" guestlist-server
# run.mjs stops and restarts the server (offline step); it keeps its pid in server.pid.
export SERVER_BIN="$BIN/guestlist-server" SERVER_CONFIG="$WORK/server.toml" SERVER_PID_FILE="$WORK/server.pid" API_URL ADMIN_URL

log "playing $SIGNUPS sign-ups"
"$BIN/devtenant" signup --api "$API_URL" --count "$SIGNUPS" \
  --username connector --password e2e-connector-secret --tenant "$DEVTENANT_URL" >"$OUT/signup.log" 2>&1

# ---- the app's data dir, pre-configured for these ports ----
DATA="$WORK/app-data"
mkdir -p "$DATA"
write_app_settings "$DATA/settings.json" "$ISSUER" "$API_URL" "$GRAPH_URL"

# ---- the window ----
log "driving the window under Xvfb (tauri-driver on $WD_PORT)"
export E2E_APP="$APP" DEVTENANT_URL ARTIFACTS="$OUT" E2E_MIN_REQUESTS=3 E2E_WD_PORT="$WD_PORT"
export GUESTLIST_DATA_DIR="$DATA" GUESTLIST_OPENER=http GUESTLIST_LOGIN_HINT=ada@contoso.onmicrosoft.com
export GUESTLIST_SYNC_INTERVAL_SECS=3 GUESTLIST_LOG=info
export OUT WD_PORT NATIVE_PORT DBUS_MONITOR_LOG="$OUT/dbus-monitor.log"
export EXTERNAL_SIGNUP_BIN="$BIN/guestlist-external-signup"
export NOTIFYD_BIN="$BIN/guestlist-notifyd" NOTIFYD_LOG="$OUT/notifications.jsonl" NOTIFYD_URL="http://127.0.0.1:$NOTIFYD_PORT"
set +e
xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- bash -c '
  printf %s pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null
  # Records every org.freedesktop.Notifications call on this private bus (run.mjs reads it).
  dbus-monitor --session "interface=org.freedesktop.Notifications" >"$DBUS_MONITOR_LOG" 2>&1 &
  mon=$!
  # The notification server: owns org.freedesktop.Notifications before the app starts (so no
  # other server is D-Bus activated), logs every Notify call, invokes actions on request.
  "$NOTIFYD_BIN" --log "$NOTIFYD_LOG" --control "127.0.0.1:${NOTIFYD_URL##*:}" 2>"$OUT/notifyd.log" &
  nd=$!
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$NOTIFYD_URL/notifications" && break
    sleep 0.1
  done
  curl -fsS -o /dev/null "$NOTIFYD_URL/notifications" || { echo "e2e: FAILED: guestlist-notifyd did not start (see notifyd.log)"; exit 1; }
  tauri-driver --port "$WD_PORT" --native-port "$NATIVE_PORT" >"$OUT/tauri-driver.log" 2>&1 &
  td=$!
  for _ in $(seq 1 100); do
    (echo >/dev/tcp/127.0.0.1/"$WD_PORT") 2>/dev/null && break
    sleep 0.1
  done
  node tests/e2e/run.mjs
  rc=$?
  if [ "$rc" = 0 ]; then
    # Independent of run.mjs: the server logged Notify calls with the buttons and an action.
    if grep -q "\"summary\":\"Guest request: " "$NOTIFYD_LOG" && grep -q "\"approve\",\"Approve\"" "$NOTIFYD_LOG" \
      && grep -q "\"event\":\"action_invoked\"" "$NOTIFYD_LOG" && grep -q "member=ActionInvoked" "$DBUS_MONITOR_LOG"; then
      echo "e2e: OS notifications announced the new requests with Approve/Open, and actions were invoked"
    else
      echo "e2e: FAILED: no notification with actions in notifications.jsonl / dbus-monitor.log"
      rc=1
    fi
  fi
  kill -TERM "$td" "$mon" "$nd" 2>/dev/null
  wait "$td" 2>/dev/null
  exit $rc
'
rc=$?
set -e

# The app's own log file (tauri-plugin-log, <data dir>/logs): written, and no e-mail address in
# it at the INFO level the run uses (names and addresses are logged at debug only).
APPLOG="$DATA/logs/guestlist.log"
if [ "$rc" = 0 ]; then
  cp "$APPLOG" "$OUT/app.log" 2>/dev/null || true
  if [ ! -s "$APPLOG" ]; then
    log "FAILED: the app wrote no log file at $APPLOG"
    rc=1
  elif grep -nE '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+' "$APPLOG" | head -5 | grep .; then
    log "FAILED: e-mail addresses in the app's INFO log (above; artifacts/e2e/app.log)"
    rc=1
  else
    log "the app's log file has $(wc -l <"$APPLOG") lines and no e-mail address"
  fi
fi

if [ "$rc" = 0 ] && [ "${E2E_UPDATE_DOCS:-0}" = 1 ]; then
  # Only on request: `make test` leaves the tracked tree as it found it (scripts/test.sh checks).
  mkdir -p docs/screenshots
  cp "$OUT/queue.png" docs/screenshots/queue.png
  cp "$OUT/side-by-side.png" docs/screenshots/side-by-side.png
  cp "$OUT/existing-account.png" docs/screenshots/existing-account.png
  # Languages and accessibility (issue 15): the deny dialog in English, the French pass.
  for f in deny.png signin-fr.png queue-fr.png deny-fr.png; do cp "$OUT/$f" "docs/screenshots/$f"; done
  log "passed; screenshots in $OUT and docs/screenshots/"
elif [ "$rc" = 0 ]; then
  log "passed; screenshots in $OUT (E2E_UPDATE_DOCS=1 also copies them to docs/screenshots/)"
else
  log "FAILED (rc=$rc); see $OUT (failure.png, failure.html, *.log)"
fi
exit "$rc"
