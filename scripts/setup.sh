#!/usr/bin/env bash
# Idempotent setup: installs only what is missing (apt packages, npm packages, tauri-driver,
# schemathesis, cargo-deny).
# Usage: scripts/setup.sh [server|desktop|e2e|schemathesis|cargo-deny|all]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

server_pkgs=(build-essential pkg-config curl ca-certificates libssl-dev)
# The SMTP receiver (aiosmtpd) that guestlist-server's guest e-mail tests start (issue 14 §5).
server_pkgs+=(python3-aiosmtpd)
desktop_pkgs=(build-essential pkg-config curl wget file libssl-dev libgtk-3-dev libwebkit2gtk-4.1-dev
  libsoup-3.0-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libdbus-1-dev)
# PostgreSQL and HAProxy: the replica tests (tests/it/replicas.rs) and `make bench` start their
# own PostgreSQL cluster (initdb/pg_ctl in a temp dir) and their own haproxy; the packages' system
# services are not wanted (see no_services below). systemd provides `systemd-analyze verify` for
# deploy/guestlist-server.service.
db_pkgs=(postgresql haproxy)
e2e_pkgs=(xvfb xauth webkit2gtk-driver dbus dbus-x11 dbus-user-session gnome-keyring
  libsecret-tools dunst libnotify-bin nodejs npm)

# schemathesis (PyPI), pinned, in its own venv outside the repo (scripts/schemathesis.sh runs it
# in `make test`). Idempotent: nothing happens when the pinned version is already there.
SCHEMATHESIS_VERSION=4.32.5
SCHEMATHESIS_VENV=${SCHEMATHESIS_VENV:-$HOME/.cache/guestlist/schemathesis-$SCHEMATHESIS_VERSION}
install_schemathesis() {
  if [ -x "$SCHEMATHESIS_VENV/bin/schemathesis" ]; then return 0; fi
  echo "setup: installing schemathesis $SCHEMATHESIS_VERSION (PyPI) in $SCHEMATHESIS_VENV"
  if ! python3 -m venv "$SCHEMATHESIS_VENV" 2>/dev/null; then
    rm -rf "$SCHEMATHESIS_VENV"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    python3 -m venv "$SCHEMATHESIS_VENV"
  fi
  "$SCHEMATHESIS_VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" \
    || { rm -rf "$SCHEMATHESIS_VENV"; echo "setup: schemathesis install failed" >&2; exit 1; }
}
if [ "$what" = schemathesis ]; then install_schemathesis; exit 0; fi

# cargo-deny (crates.io), pinned: `make test` runs `cargo deny check licenses bans sources`
# against deny.toml. Idempotent: nothing happens when the pinned version is installed.
CARGO_DENY_VERSION=0.20.2
install_cargo_deny() {
  if [ "$(cargo deny --version 2>/dev/null)" = "cargo-deny $CARGO_DENY_VERSION" ]; then return 0; fi
  echo "setup: installing cargo-deny $CARGO_DENY_VERSION (crates.io)"
  cargo install --locked cargo-deny --version "$CARGO_DENY_VERSION"
}
if [ "$what" = cargo-deny ]; then install_cargo_deny; exit 0; fi

# `npm ci` in $1 when its node_modules is missing or older than package.json/package-lock.json.
npm_ci() {
  local dir=$1
  if [ ! -f "$dir/node_modules/.installed" ] || [ "$dir/package.json" -nt "$dir/node_modules/.installed" ] \
    || [ "$dir/package-lock.json" -nt "$dir/node_modules/.installed" ]; then
    echo "setup: npm ci in $dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed)
  fi
}

want=()
case "$what" in
  server) want=("${server_pkgs[@]}" "${db_pkgs[@]}") ;;
  desktop) want=("${server_pkgs[@]}" "${desktop_pkgs[@]}") ;;
  e2e|all) want=("${server_pkgs[@]}" "${db_pkgs[@]}" "${desktop_pkgs[@]}" "${e2e_pkgs[@]}") ;;
  *) echo "usage: $0 [server|desktop|e2e|schemathesis|cargo-deny|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  # node/npm may come from outside apt (e.g. nvm); skip them when the commands exist.
  if { [ "$p" = nodejs ] && command -v node >/dev/null; } || { [ "$p" = npm ] && command -v npm >/dev/null; }; then
    continue
  fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# systemd-analyze comes with Debian's systemd package; containers often lack it.
if [ "$what" != desktop ] && ! command -v systemd-analyze >/dev/null; then missing+=(systemd); fi

# Installing postgresql or haproxy must not leave a system service running: the tests start their
# own. While they are installed, a policy-rc.d (invoke-rc.d's hook, exit 101 = "not allowed")
# keeps Debian's maintainer scripts from starting them, unless the machine already has one; after,
# the units are disabled, and a default PostgreSQL cluster that this install created (Debian's
# `main`, empty) is dropped.
no_services() {
  local new_pg=$1
  if [ -d /run/systemd/system ]; then
    for unit in haproxy.service postgresql.service; do
      if systemctl list-unit-files "$unit" >/dev/null 2>&1; then $SUDO systemctl disable --now "$unit" >/dev/null 2>&1 || true; fi
    done
  fi
  if [ "$new_pg" = 1 ] && command -v pg_lsclusters >/dev/null; then
    pg_lsclusters -h 2>/dev/null | while read -r ver name _; do
      if [ "$name" = main ]; then echo "setup: dropping the default PostgreSQL cluster $ver/main (not used)"; $SUDO pg_dropcluster --stop "$ver" main; fi
    done
  fi
}
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  services=0 new_pg=0 own_policy=0
  for p in "${missing[@]}"; do
    case "$p" in haproxy) services=1 ;; postgresql) services=1 new_pg=1 ;; esac
  done
  # Only a cluster created now is dropped: none may exist before the install.
  if [ "$new_pg" = 1 ] && [ -n "$(ls -A /etc/postgresql 2>/dev/null)" ]; then new_pg=0; fi
  if [ "$services" = 1 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# written by guestlist scripts/setup.sh for the length of one apt-get install\nexit 101\n' \
      | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ "$own_policy" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
  if [ "$services" = 1 ]; then no_services "$new_pg"; fi
fi

if [ "$what" = e2e ] || [ "$what" = all ]; then
  if ! command -v tauri-driver >/dev/null && [ ! -x "$HOME/.cargo/bin/tauri-driver" ]; then
    echo "setup: installing tauri-driver"
    cargo install tauri-driver --version '^2' --locked
  fi
fi

# npm packages exactly as the committed package-lock.json says (`npm ci` never rewrites it, so a
# fresh clone stays clean); again only when package.json or the lockfile changed since.
for dir in ui tests/oidc-provider; do
  if [ "$what" != server ] && [ -f "$dir/package.json" ]; then npm_ci "$dir"; fi
done

if [ "$what" = all ]; then install_schemathesis; install_cargo_deny; fi
