#!/usr/bin/env bash
# `make demo`: the main job on the embedded default (devtenant, the emulated Entra tenant).
#
# 1. installs what is missing (scripts/setup.sh: apt, npm, tauri-driver; idempotent)
# 2. builds devtenant, guestlist-server and the desktop app
# 3. starts devtenant on DEVTENANT_PORT (8900) and guestlist-server on GUESTLIST_PORT (8080),
#    both on loopback, state under target/demo/
# 4. plays DEMO_SIGNUPS (40) realistic self-service sign-ups through devtenant's user flow
#    (GUESTLIST_DEMO_FLOW: workforce = API connectors, the default; external = an external
#    tenant's custom authentication extensions; mixed = both, see the README's demo section)
# 5. opens the Guestlist app signed in as Ada (an approver) with the pending queue
# Services stop when the app exits (or on Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"
DT_PORT=${DEVTENANT_PORT:-8900}
API_PORT=${GUESTLIST_PORT:-8080}
SIGNUPS=${DEMO_SIGNUPS:-40}
FLOW=${GUESTLIST_DEMO_FLOW:-workforce}
case "$FLOW" in workforce|external|mixed) ;; *)
  echo "demo: GUESTLIST_DEMO_FLOW must be workforce, external or mixed (got $FLOW)" >&2; exit 1;; esac
TENANT_ID=4a1e2d3c-5b6f-4789-9abc-def012345678
CONNECTOR_USER=entra-user-flow
CONNECTOR_PASSWORD=demo-connector-secret

bash scripts/setup.sh all
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
DEMO="$TARGET/demo"
mkdir -p "$DEMO"
echo "demo: building devtenant and guestlist-server"
cargo build -q -p guestlist-devtenant -p guestlist-server --bins

for port in "$DT_PORT" "$API_PORT"; do
  if (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
    echo "demo: port $port is in use; stop what runs there or set DEVTENANT_PORT / GUESTLIST_PORT" >&2
    exit 1
  fi
done

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
wait_http() {
  for _ in $(seq 1 150); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.2; done
  echo "demo: $2 did not start (log: $3)" >&2; exit 1
}

DEVTENANT_URL="http://127.0.0.1:$DT_PORT"
API_URL="http://127.0.0.1:$API_PORT"
ISSUER="$DEVTENANT_URL/$TENANT_ID/v2.0"
DT_ARGS=()
EXTENSION_TOML=""
FLOW_NOTE=""
if [ "$FLOW" != workforce ]; then
  FLOW_NOTE=" ($FLOW)"
  # An external tenant: extensions carry tokens from its ciamlogin issuer (devtenant README).
  printf 'tenant_kind = "external"\n' >"$DEMO/devtenant.toml"
  DT_ARGS=(--config "$DEMO/devtenant.toml")
  EXTENSION_TOML=$(printf '[extension_auth]\nissuers = ["https://contosocustomers.ciamlogin.com/%s/v2.0"]\njwks_uri = "%s/%s/discovery/v2.0/keys"\naudiences = ["api://guestlist-approvals"]' "$TENANT_ID" "$DEVTENANT_URL" "$TENANT_ID")
fi
"$TARGET/debug/devtenant" --listen "127.0.0.1:$DT_PORT" "${DT_ARGS[@]}" >"$DEMO/devtenant.log" 2>&1 &
PIDS+=($!)
wait_http "$ISSUER/.well-known/openid-configuration" devtenant "$DEMO/devtenant.log"

# A fresh queue each run.
rm -f "$DEMO/guestlist.db" "$DEMO/guestlist.db-wal" "$DEMO/guestlist.db-shm"
rm -rf "$DEMO/app-data"
. scripts/app-settings.sh
write_server_config "$DEMO/server.toml" "127.0.0.1:$API_PORT" "$DEMO/guestlist.db" "$ISSUER" \
  $'[policy]\ncode_prefix = "CONTOSO"'"${EXTENSION_TOML:+$'\n\n'$EXTENSION_TOML}"
GUESTLIST_CONNECTOR_USERNAME=$CONNECTOR_USER GUESTLIST_CONNECTOR_PASSWORD=$CONNECTOR_PASSWORD \
  "$TARGET/debug/guestlist-server" --config "$DEMO/server.toml" >"$DEMO/server.log" 2>&1 &
PIDS+=($!)
wait_http "$API_URL/readyz" guestlist-server "$DEMO/server.log"

echo "demo: playing $SIGNUPS sign-ups through devtenant's user flow$FLOW_NOTE"
"$TARGET/debug/devtenant" signup --api "$API_URL" --count "$SIGNUPS" --flow "$FLOW" \
  --username "$CONNECTOR_USER" --password "$CONNECTOR_PASSWORD" --tenant "$DEVTENANT_URL" \
  | tee "$DEMO/signup.log" | tail -n 12

cat <<MSG

demo: running
  devtenant (emulated Entra tenant)  $DEVTENANT_URL   issuer $ISSUER
  guestlist-server (approval API)    $API_URL          connectors: Basic $CONNECTOR_USER / $CONNECTOR_PASSWORD
  guest accounts and invitations     curl -s $DEVTENANT_URL/_devtenant/users | python3 -m json.tool
  metrics (admin listener)           curl -s http://127.0.0.1:9464/metrics (when port 9464 was free)
  logs                               $DEMO/*.log

MSG
GUESTLIST_DATA_DIR="$DEMO/app-data" DEVTENANT_URL="$DEVTENANT_URL" GUESTLIST_API_URL="$API_URL" \
  bash scripts/demo-app.sh
