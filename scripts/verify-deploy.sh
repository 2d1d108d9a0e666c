#!/usr/bin/env bash
# Checks the files of deploy/ (run by `make test` after the cargo test step):
#   - `systemd-analyze verify` on deploy/guestlist-server.service. verify insists that ExecStart's
#     program exists, and the unit names the installed path /usr/local/bin/guestlist-server; so
#     it verifies a copy in a temp dir whose ExecStart points at the built binary
#     ($CARGO_TARGET_DIR or target/, debug) and whose credentials are read from empty files —
#     every other line is the shipped one;
#   - `haproxy -c` on deploy/haproxy.cfg.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=${GUESTLIST_SERVER_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/guestlist-server}
[ -x "$BIN" ] || { echo "verify-deploy: $BIN is missing: cargo build -p guestlist-server first" >&2; exit 1; }
command -v systemd-analyze >/dev/null || { echo "verify-deploy: systemd-analyze is missing: run scripts/setup.sh" >&2; exit 1; }
command -v haproxy >/dev/null || { echo "verify-deploy: haproxy is missing: run scripts/setup.sh" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/credentials"
sed -e "s|^ExecStart=/usr/local/bin/guestlist-server |ExecStart=$BIN |" \
  -e "s|^LoadCredential=\([^:]*\):/etc/guestlist/|LoadCredential=\1:$tmp/credentials/|" \
  deploy/guestlist-server.service >"$tmp/guestlist-server.service"
grep -q "^ExecStart=$BIN " "$tmp/guestlist-server.service" \
  || { echo "verify-deploy: the unit's ExecStart is not /usr/local/bin/guestlist-server …" >&2; exit 1; }
for c in $(sed -n 's/^LoadCredential=\([^:]*\):.*/\1/p' "$tmp/guestlist-server.service"); do : >"$tmp/credentials/$c"; done
# verify prints warnings and errors to stderr and may exit 0 with them: any output fails.
out=$(cd "$tmp" && systemd-analyze verify ./guestlist-server.service 2>&1) || { echo "$out" >&2; exit 1; }
if [ -n "$out" ]; then echo "$out" >&2; echo "verify-deploy: systemd-analyze verify complained" >&2; exit 1; fi
echo "verify-deploy: deploy/guestlist-server.service verified (systemd $(systemd-analyze --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p'))"
haproxy -q -c -f deploy/haproxy.cfg
echo "verify-deploy: deploy/haproxy.cfg valid ($(haproxy -v | sed -n '1s/^HAProxy version \([^ ]*\).*/\1/p'))"
