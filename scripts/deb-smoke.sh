#!/usr/bin/env bash
# Smoke test of the .deb that `make package` built (scripts/package.sh):
#   - unpacks it into a scratch root (`dpkg-deb -x`, no install, no root);
#   - the package holds the binary, the icons and a .desktop entry that registers the
#     guestlist:// scheme (MimeType=x-scheme-handler/guestlist), and its control file lists
#     the runtime libraries; the .rpm starts with the RPM lead;
#   - under Xvfb and a private D-Bus session, starts the *unpacked* binary (with a deep link as
#     its argument, as the desktop does for a click on one) and waits for its "Guestlist"
#     top-level window (xwininfo); the log file says it kept that link for the UI;
#   - launches it a second time with guestlist://request/<id>: the second process hands the
#     link to the first (single instance) and exits, and the first one's log file (rotated
#     log in <data dir>/logs) says it opened a request; a hostile link is ignored.
# Usage: scripts/deb-smoke.sh [DEB [RPM]]   (default: the newest in <target>/debug/bundle)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
DEB=${1:-$(ls -t "$TARGET"/debug/bundle/deb/*.deb | head -1)}
RPM=${2:-$(ls -t "$TARGET"/debug/bundle/rpm/*.rpm | head -1)}
fail() { echo "deb-smoke: FAILED: $*" >&2; exit 1; }
log() { printf 'deb-smoke: %s\n' "$*"; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/root"
dpkg-deb -x "$DEB" "$ROOT"
dpkg-deb -f "$DEB" Package Depends >"$WORK/control"
grep -q '^Package: guestlist' "$WORK/control" || fail "package name: $(cat "$WORK/control")"
grep -q 'libwebkit2gtk-4.1-0' "$WORK/control" || fail "Depends lacks libwebkit2gtk-4.1-0"
BIN="$ROOT/usr/bin/guestlist"
[ -x "$BIN" ] || fail "no usr/bin/guestlist in $DEB"
DESKTOP=$(ls "$ROOT"/usr/share/applications/*.desktop)
grep -q '^Exec=guestlist' "$DESKTOP" || fail "$DESKTOP has no Exec=guestlist"
grep -q '^MimeType=.*x-scheme-handler/guestlist' "$DESKTOP" || fail "$DESKTOP does not register guestlist://"
ls "$ROOT"/usr/share/icons/hicolor/*/apps/guestlist.png >/dev/null || fail "no icons"
[ "$(head -c 4 "$RPM" | od -An -tx1 | tr -d ' \n')" = edabeedb ] || fail "$RPM is not an RPM package"
log "$(basename "$DEB"): binary, icons, $(basename "$DESKTOP") with the guestlist:// scheme; $(basename "$RPM") present"

DATA="$WORK/data"
mkdir -p "$DATA"
export BIN DATA
export GUESTLIST_DATA_DIR="$DATA" GUESTLIST_NO_TRAY=1 GUESTLIST_SYNC_INTERVAL_SECS=3600 GUESTLIST_LOG=info
xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- bash -c '
  set -u
  fail() { echo "deb-smoke: FAILED: $*" >&2; exit 1; }
  # The app keeps its cache key in the Secret Service: an unlocked keyring, as on a desktop.
  printf %s pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null
  # Started by a link (the app was not running): it keeps the request for the UI.
  "$BIN" guestlist://request/0192f0c4-7b1a-7c3e-9f00-0000000000aa >"$DATA/stderr.log" 2>&1 &
  app=$!
  trap "kill $app 2>/dev/null; wait $app 2>/dev/null" EXIT
  start=$(date +%s%N)
  for _ in $(seq 1 300); do
    xwininfo -root -tree 2>/dev/null | grep -q "\"Guestlist\"" && break
    kill -0 "$app" 2>/dev/null || { cat "$DATA/stderr.log" >&2; fail "the installed binary exited"; }
    sleep 0.1
  done
  xwininfo -root -tree | grep "\"Guestlist\"" >/dev/null || { cat "$DATA/stderr.log" >&2; fail "no Guestlist window within 30 s"; }
  echo "deb-smoke: the unpacked binary shows its window after $(( ($(date +%s%N) - start) / 1000000 )) ms"
  LOGF="$DATA/logs/guestlist.log"
  id=0192f0c4-7b1a-7c3e-9f00-1234567890ab
  timeout 30 "$BIN" "guestlist://request/$id/approve" >/dev/null 2>&1 || fail "the second launch (hostile link) did not exit cleanly"
  timeout 30 "$BIN" "guestlist://request/$id" >/dev/null 2>&1 || fail "the second launch did not exit cleanly"
  for _ in $(seq 1 100); do
    grep -q "deep link: opening a request" "$LOGF" 2>/dev/null && break
    sleep 0.1
  done
  grep -q "deep link: opening a request" "$LOGF" || { cat "$LOGF" >&2; fail "the running app did not open the deep link (log: $LOGF)"; }
  grep -q "ignored a link that is not guestlist://request/<id>" "$LOGF" || fail "the hostile link was not reported as ignored"
  grep -q "started by a deep link to a request" "$LOGF" || fail "the link the app was started with was not kept"
  [ "$(grep -c "deep link: opening a request" "$LOGF")" = 1 ] || fail "a hostile link opened something"
  kill -0 "$app" 2>/dev/null || fail "the first instance died"
  [ "$(xwininfo -root -tree | grep -c "\"Guestlist\"")" -ge 1 ] || fail "the window is gone"
  echo "deb-smoke: a second launch with guestlist://request/<id> reached the running app (single instance); a hostile link was ignored; log file $LOGF"
'
log "passed"
