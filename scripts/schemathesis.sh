#!/usr/bin/env bash
# The approval API against its own OpenAPI document, with schemathesis (PyPI, pinned in
# scripts/setup.sh): a real guestlist-server and devtenant on 127.0.0.1, then `schemathesis run`
# with two checks on every answer — no 5xx (`not_a_server_error`) and the body matches the
# schema documented for its status (`response_schema_conformance`) — over generated valid and
# invalid requests (`--mode all`), a bounded number of examples per operation.
#
#   1. connectors (HTTP Basic) and ops endpoints;
#   2. the External ID extension endpoints, with a token devtenant issues to Entra's
#      authentication events app (client credentials);
#   3. the approver API, with Ada's token (app role Approver; authorization code + PKCE).
#      `GET /api/events` is left out: a stream never ends, so there is no response to check.
#
# Knobs (env): SCHEMATHESIS_EXAMPLES (default 100 per operation), SCHEMATHESIS_SEED (default 1,
# so a failure reproduces), SERVER_BIN / DEVTENANT_BIN (default: the debug builds, built here),
# SCHEMA_URL (default: $API/openapi.json on the main listener; set it when /openapi.json is
# served elsewhere, e.g. by an admin listener). Needs python3; run by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export PATH="$HOME/.cargo/bin:$PATH"

bash scripts/setup.sh schemathesis
SCHEMATHESIS_VENV=${SCHEMATHESIS_VENV:-$HOME/.cache/guestlist/schemathesis-$(sed -n 's/^SCHEMATHESIS_VERSION=//p' scripts/setup.sh)}
ST=$SCHEMATHESIS_VENV/bin/schemathesis
PY=$SCHEMATHESIS_VENV/bin/python

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
if [ -z "${SERVER_BIN:-}" ] || [ -z "${DEVTENANT_BIN:-}" ]; then
  cargo build -q --locked -p guestlist-server -p guestlist-devtenant --bins
fi
SERVER_BIN=${SERVER_BIN:-$TARGET/debug/guestlist-server}
DEVTENANT_BIN=${DEVTENANT_BIN:-$TARGET/debug/devtenant}
EXAMPLES=${SCHEMATHESIS_EXAMPLES:-100}
SEED=${SCHEMATHESIS_SEED:-1}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/guestlist-schemathesis.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 "$ROOT/scripts/free-port.py"; } # below the ephemeral port range
wait_http() { # url name log
  for _ in $(seq 1 200); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "schemathesis: $2 did not start:" >&2; tail -20 "$3" >&2; exit 1
}

TENANT_ID=4a1e2d3c-5b6f-4789-9abc-def012345678 # guestlist_devtenant::defaults::TENANT_ID
DT_PORT=$(free_port)
ISSUER="http://127.0.0.1:$DT_PORT/$TENANT_ID/v2.0"
"$DEVTENANT_BIN" --listen "127.0.0.1:$DT_PORT" >"$WORK/devtenant.log" 2>&1 &
PIDS+=($!)
wait_http "$ISSUER/.well-known/openid-configuration" devtenant "$WORK/devtenant.log"

API_PORT=$(free_port)
API="http://127.0.0.1:$API_PORT"
# /openapi.json and /metrics are served on the admin listener (loopback), not on the API's.
ADMIN_PORT=$(free_port)
ADMIN="http://127.0.0.1:$ADMIN_PORT"
SCHEMA_URL=${SCHEMA_URL:-$ADMIN/openapi.json}
. scripts/app-settings.sh
export ADMIN_LISTEN="127.0.0.1:$ADMIN_PORT"
write_server_config "$WORK/server.toml" "127.0.0.1:$API_PORT" "$WORK/guestlist.db" "$ISSUER" \
  "[extension_auth]
issuers = [\"$ISSUER\"]
audiences = [\"9b2e7c10-3f4a-4d5b-8e6f-7a8b9c0d1e2f\", \"api://guestlist-approvals\"]"
CONNECTOR_USER=entra
CONNECTOR_PASSWORD=schemathesis-connector-secret
GUESTLIST_CONNECTOR_USERNAME=$CONNECTOR_USER GUESTLIST_CONNECTOR_PASSWORD=$CONNECTOR_PASSWORD \
  "$SERVER_BIN" --config "$WORK/server.toml" >"$WORK/server.log" 2>&1 &
PIDS+=($!)
wait_http "$API/readyz" guestlist-server "$WORK/server.log"
wait_http "$SCHEMA_URL" "the OpenAPI document at $SCHEMA_URL" "$WORK/server.log"

# A few stored requests, some decided, so lists, reads and history return real items.
"$DEVTENANT_BIN" signup --api "$API" --username "$CONNECTOR_USER" --password "$CONNECTOR_PASSWORD" \
  --count 8 --tenant "http://127.0.0.1:$DT_PORT" >"$WORK/signup.log" 2>&1 \
  || { echo "schemathesis: seeding sign-ups failed:" >&2; tail -20 "$WORK/signup.log" >&2; exit 1; }

APPROVER_TOKEN=$("$PY" tests/schemathesis/tokens.py approver "$ISSUER")
EXTENSION_TOKEN=$("$PY" tests/schemathesis/tokens.py extension "$ISSUER")

# The credentials work (otherwise every generated call would only meet a 401).
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $APPROVER_TOKEN" "$API/api/requests")
[ "$code" = 200 ] || { echo "schemathesis: the approver token got HTTP $code from /api/requests" >&2; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $EXTENSION_TOKEN" -H 'Content-Type: application/json' \
  --data '{"type":"microsoft.graph.authenticationEvent.attributeCollectionStart","data":{"@odata.type":"microsoft.graph.onAttributeCollectionStartCalloutData","userSignUpInfo":{"attributes":{"email":{"value":"probe@fabrikam.com"}}}}}' \
  "$API/connectors/external-id/attribute-collection-start")
[ "$code" = 200 ] || { echo "schemathesis: the extension token got HTTP $code" >&2; exit 1; }

run() { # title, then schemathesis options
  local title=$1
  shift
  printf -- '-- schemathesis: %s\n' "$title"
  # From the work directory: schemathesis keeps a crash cache (.schemathesis/) in the current one.
  (cd "$WORK" && "$ST" run "$SCHEMA_URL" --url "$API" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples "$EXAMPLES" --seed "$SEED" --workers 2 --request-timeout 10 \
    --phases examples,coverage,fuzzing --no-color --warnings off \
    --generation-with-security-parameters false --generation-database none "$@")
}

status=0
run "connectors (Basic) and ops" --include-tag connectors --include-tag ops \
  --auth "$CONNECTOR_USER:$CONNECTOR_PASSWORD" || status=1
run "External ID extensions (bearer from Entra's authentication events app)" --include-tag extensions \
  -H "Authorization: Bearer $EXTENSION_TOKEN" || status=1
run "approver API (bearer, app role Approver)" --include-tag approver --exclude-path /api/events \
  -H "Authorization: Bearer $APPROVER_TOKEN" || status=1

# What the generated calls got, by endpoint and answer (Basic auth let them through).
curl -s "$ADMIN/metrics" | grep '^guestlist_connector_answers_total' || {
  echo "schemathesis: no connector call was answered past authentication" >&2
  status=1
}
if grep -q '"level":"ERROR"\|ERROR' "$WORK/server.log"; then
  echo "schemathesis: the server logged errors:" >&2
  grep 'ERROR' "$WORK/server.log" | tail -20 >&2
  status=1
fi
exit $status
