#!/usr/bin/env bash
# Launches the Guestlist desktop app for `make demo`, pre-configured for the local devtenant and
# approval API and signed in as Ada (devtenant signs in at once for a login_hint), with the
# pending queue synced.
#
# Expects devtenant and guestlist-server to be running (scripts/demo.sh starts them):
#   DEVTENANT_URL (default http://127.0.0.1:8900), GUESTLIST_API_URL (default http://127.0.0.1:8080)
#   GUESTLIST_DATA_DIR (default target/demo/app-data): settings, cache and outbox of the demo
#   GUESTLIST_LOGIN_HINT (default ada@contoso.onmicrosoft.com)
# With no DISPLAY it runs the app under Xvfb, saves a screenshot to artifacts/demo/guestlist.png
# and says how to view it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"
DEVTENANT_URL=${DEVTENANT_URL:-http://127.0.0.1:8900}
API_URL=${GUESTLIST_API_URL:-http://127.0.0.1:8080}
TENANT_ID=4a1e2d3c-5b6f-4789-9abc-def012345678
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
APP="$TARGET/debug/guestlist"
export GUESTLIST_DATA_DIR=${GUESTLIST_DATA_DIR:-$TARGET/demo/app-data}

# Build when the UI or the shell changed since the last build (cargo is a no-op otherwise).
if [ ! -d ui/node_modules ]; then bash scripts/setup.sh desktop; fi
if [ ! -f ui/dist/index.html ] || [ -n "$(find ui/src ui/index.html -newer ui/dist/index.html -print -quit)" ]; then
  echo "demo-app: building the UI"
  (cd ui && npm run build --silent)
fi
echo "demo-app: building the app (UI embedded)"
cargo build -q -p guestlist-desktop --features tauri/custom-protocol

# devtenant says where its Graph lives; fall back to its documented layout.
GRAPH_URL=$(curl -fsS "$DEVTENANT_URL/_devtenant/health" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["graph"])' 2>/dev/null || echo "$DEVTENANT_URL/v1.0")
if ! curl -fsS -o /dev/null "$API_URL/healthz" 2>/dev/null; then
  echo "demo-app: warning: no approval API at $API_URL (start it with scripts/demo.sh); the app will show offline" >&2
fi
mkdir -p "$GUESTLIST_DATA_DIR"
. scripts/app-settings.sh
write_app_settings "$GUESTLIST_DATA_DIR/settings.json" "$DEVTENANT_URL/$TENANT_ID/v2.0" "$API_URL" "$GRAPH_URL"

# Sign in at start without a browser: devtenant answers a login_hint at once, so the app fetches
# the authorize URL itself and follows the redirect to its loopback listener.
export GUESTLIST_LOGIN_HINT=${GUESTLIST_LOGIN_HINT:-ada@contoso.onmicrosoft.com}
export GUESTLIST_OPENER=${GUESTLIST_OPENER:-http}
export GUESTLIST_AUTO_SIGN_IN=1
export GUESTLIST_SYNC_INTERVAL_SECS=${GUESTLIST_SYNC_INTERVAL_SECS:-5}

if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  echo "demo-app: starting Guestlist (data in $GUESTLIST_DATA_DIR); close the window to keep it in the tray, Quit from the tray menu"
  exec "$APP"
fi

# No display: run it under Xvfb and take a screenshot through tauri-driver.
SHOT="$ROOT/artifacts/demo/guestlist.png"
mkdir -p "$(dirname "$SHOT")"
if [ ! -d tests/e2e/node_modules ]; then (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error); fi
free_port() { python3 "$ROOT/scripts/free-port.py"; } # below the ephemeral port range
export E2E_WD_PORT=$(free_port) NATIVE_PORT=$(free_port) E2E_APP="$APP" SCREENSHOT="$SHOT"
echo "demo-app: no DISPLAY; running the app under Xvfb to take a screenshot"
xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- bash -c '
  printf %s pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null
  tauri-driver --port "$E2E_WD_PORT" --native-port "$NATIVE_PORT" >/dev/null 2>&1 &
  td=$!
  for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/"$E2E_WD_PORT") 2>/dev/null && break; sleep 0.1; done
  node tests/e2e/screenshot.mjs; rc=$?
  kill -TERM "$td"; wait "$td" 2>/dev/null
  exit $rc
'
cat <<MSG
demo-app: the app ran headless; its window is in $SHOT (open it with any image viewer).
  To use it interactively, run \`make demo\` from a desktop session, or over SSH with X forwarding
  (ssh -X host, then make demo), or run the approval API + devtenant here and the app on your
  desktop with GUESTLIST_API_URL / DEVTENANT_URL pointing at this machine.
MSG
