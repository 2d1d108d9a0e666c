#!/usr/bin/env bash
# Regenerates the ts-rs bindings the UI imports (ui/src/bindings/, written by
# guestlist-reviewer's `export_bindings` test) and fails when they differ from what is committed,
# then type-checks the UI against them.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test -q -p guestlist-reviewer --lib export_bindings >/dev/null
# Changed, deleted and new (untracked) files all count as a difference.
changes=$(git status --porcelain -- ui/src/bindings)
if [ -n "$changes" ]; then
  echo "$changes" >&2
  echo "check-bindings: the regenerated ui/src/bindings differ from the committed ones (see above): commit them" >&2
  exit 1
fi
if [ -d ui/node_modules ]; then
  (cd ui && npx --no-install tsc --noEmit)
fi
echo "check-bindings: ui/src/bindings is up to date"
