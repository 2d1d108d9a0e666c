#!/usr/bin/env bash
# The app-in-its-window section of `make bench` (called by scripts/bench.sh; benchmarks only,
# never part of `make test`).
#
# Starts devtenant and a guestlist-server (approver sign-in through devtenant) on a database of
# BENCH_APP_ROWS pending requests (bench-populate), writes the app's settings.json, then under
# Xvfb + a private D-Bus session with an unlocked gnome-keyring (the app's refresh token) starts
# tauri-driver and runs tests/e2e/measure.mjs: one launch signs in and syncs the requests into
# the app's cache, then BENCH_RUNS cold starts of the app, each followed by one launch of the
# minimal Tauri 2 app (bench/minimal-app), measure cold start, search keystroke, side-by-side and
# the PSS of both process trees. The figures are appended to RAW (bench-report's format).
#
# Usage: scripts/bench-app.sh BIN_DIR RAW WORK_DIR
#   BIN_DIR holds guestlist (built with the UI embedded), tauri-minimal, devtenant,
#   guestlist-server and bench-populate, all of one profile (scripts/bench.sh builds them).
# Env: BENCH_RUNS (5), BENCH_APP_ROWS (10000), BENCH_APP_SETTLE_MS (3000).
# Screenshots and logs go to WORK_DIR/app/ (app-queue.png, app-side-by-side.png).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$(cd "$1" && pwd)
RAW=$2
WORK=$3/app
ROWS=${BENCH_APP_ROWS:-10000}
TENANT_ID=4a1e2d3c-5b6f-4789-9abc-def012345678
export PATH="$HOME/.cargo/bin:$PATH"

for b in guestlist tauri-minimal devtenant guestlist-server bench-populate; do
  [ -x "$BIN/$b" ] || { echo "bench-app: $BIN/$b is missing" >&2; exit 1; }
done
if [ ! -d tests/e2e/node_modules ] || [ tests/e2e/package.json -nt tests/e2e/node_modules/.installed ]; then
  (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed)
fi

rm -rf "$WORK"
mkdir -p "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

free_port() { python3 "$ROOT/scripts/free-port.py"; } # below the ephemeral port range
wait_http() {
  for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null "$1"; then return 0; fi
    sleep 0.1
  done
  echo "bench-app: $1 did not come up" >&2
  return 1
}

DT_PORT=$(free_port)
API_PORT=$(free_port)
DEVTENANT_URL="http://127.0.0.1:$DT_PORT"
API_URL="http://127.0.0.1:$API_PORT"
ISSUER="$DEVTENANT_URL/$TENANT_ID/v2.0"

"$BIN/devtenant" --listen "127.0.0.1:$DT_PORT" >"$WORK/devtenant.log" 2>&1 &
PIDS+=($!)
wait_http "$ISSUER/.well-known/openid-configuration"
GRAPH_URL=$(curl -fsS "$DEVTENANT_URL/_devtenant/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["graph"])')

"$BIN/bench-populate" "$WORK/server.db" "$ROWS" | sed 's/^/   /'
. scripts/app-settings.sh
write_server_config "$WORK/server.toml" "127.0.0.1:$API_PORT" "$WORK/server.db" "$ISSUER"
GUESTLIST_CONNECTOR_USERNAME=entra GUESTLIST_CONNECTOR_PASSWORD=bench-connector-secret GUESTLIST_ADMIN_LISTEN=off \
  "$BIN/guestlist-server" --config "$WORK/server.toml" >"$WORK/server.log" 2>&1 &
PIDS+=($!)
wait_http "$API_URL/healthz"

# The app's data dir, pre-configured for these ports (as scripts/e2e.sh does).
DATA="$WORK/app-data"
mkdir -p "$DATA"
write_app_settings "$DATA/settings.json" "$ISSUER" "$API_URL" "$GRAPH_URL"

# Private XDG dirs: the keyring file, WebKit's and fontconfig's caches of this run only (the
# first launches fill them; the measured ones find them warm, as a user's would be).
export XDG_DATA_HOME="$WORK/xdg/data" XDG_CACHE_HOME="$WORK/xdg/cache" XDG_CONFIG_HOME="$WORK/xdg/config"
mkdir -p "$XDG_DATA_HOME" "$XDG_CACHE_HOME" "$XDG_CONFIG_HOME"
export GUESTLIST_DATA_DIR="$DATA" GUESTLIST_OPENER=http GUESTLIST_LOGIN_HINT=ada@contoso.onmicrosoft.com
export GUESTLIST_AUTO_SIGN_IN=1 GUESTLIST_LOG=warn
export BENCH_APP="$BIN/guestlist" BENCH_MIN_APP="$BIN/tauri-minimal" BENCH_RAW="$RAW" BENCH_APP_OUT="$WORK"
export BENCH_APP_ROWS="$ROWS" E2E_WD_PORT=$(free_port) NATIVE_PORT=$(free_port) WORK
xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- bash -c '
  printf %s pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null
  tauri-driver --port "$E2E_WD_PORT" --native-port "$NATIVE_PORT" >"$WORK/tauri-driver.log" 2>&1 &
  td=$!
  for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/"$E2E_WD_PORT") 2>/dev/null && break; sleep 0.1; done
  BENCH_TD_PID=$td node tests/e2e/measure.mjs
  rc=$?
  kill -TERM "$td" 2>/dev/null
  wait "$td" 2>/dev/null
  exit $rc
'
echo "   screenshots: $WORK/app-queue.png, $WORK/app-side-by-side.png"
