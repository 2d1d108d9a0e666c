#!/usr/bin/env bash
# `make package`: the Linux installers of the desktop app, .deb and .rpm (Tauri's bundlers;
# both are pure Rust in tauri-cli 2: no dpkg-buildpackage or rpmbuild needed).
#
# Builds the app with the UI embedded (the same cargo command as scripts/e2e.sh, so after the
# E2E it is already fresh), then `tauri bundle` packs that binary without building it again.
# PROFILE=debug (default, what `make test` smoke-tests with scripts/deb-smoke.sh) or
# PROFILE=release (an optimised build, 4–5 min more). AppImage, .msi/NSIS and .dmg are
# configured in src-tauri/tauri.conf.json but not built here (README, "Installers").
# Prints the paths of the two packages on its last two lines.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
PROFILE=${PROFILE:-debug}
case "$PROFILE" in
  debug) cargo_flag=() bundle_flag=(--debug) ;;
  release) cargo_flag=(--release) bundle_flag=() ;;
  *) echo "package.sh: PROFILE must be debug or release" >&2; exit 2 ;;
esac
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

bash scripts/setup.sh desktop
(cd ui && npm run build --silent)
cargo build -q -p guestlist-desktop --features tauri/custom-protocol "${cargo_flag[@]}"
out="$TARGET/$PROFILE/bundle"
rm -rf "$out/deb" "$out/rpm"
(cd src-tauri && ../ui/node_modules/.bin/tauri bundle --ci "${bundle_flag[@]}" --bundles deb,rpm)
deb=$(ls "$out"/deb/*.deb)
rpm=$(ls "$out"/rpm/*.rpm)
echo "$deb"
echo "$rpm"
