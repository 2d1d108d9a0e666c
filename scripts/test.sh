#!/usr/bin/env bash
# `make test`: setup (idempotent), format check, clippy -D warnings, UI type check and unit
# tests, then every Rust test (unit, integration, OIDC conformance, and the window E2E).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh all
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
if [ -f ui/package.json ]; then
  echo "== ui: tsc --noEmit, vitest"
  (cd ui && npx tsc --noEmit && npx vitest run)
fi
echo "== cargo test"
cargo test --workspace --locked
if [ -x scripts/e2e.sh ] && [ -d src-tauri ]; then
  echo "== window E2E"
  bash scripts/e2e.sh
fi
