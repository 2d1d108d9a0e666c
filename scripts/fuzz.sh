#!/usr/bin/env bash
# `make fuzz`: runs every fuzz target of fuzz/ (cargo-fuzz, libFuzzer, the nightly toolchain)
# for FUZZ_SECONDS each (default 60), after seeding its corpus from tests/fixtures. Installs
# cargo-fuzz and the nightly toolchain when missing (idempotent). Not part of `make test`.
#
# A crash stops the run and leaves its input in fuzz/artifacts/<target>/; reproduce it with
# `cd fuzz && cargo +nightly fuzz run <target> artifacts/<target>/<file>`, then add it to the
# normal test suite as a regression test.
#
#   FUZZ_SECONDS=300 make fuzz          # five minutes per target
#   FUZZ_TARGETS="sse_parser" make fuzz  # some targets only
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
seconds="${FUZZ_SECONDS:-60}"

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo +nightly fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

cd fuzz
# The fuzz workspace's own target dir: a nightly, instrumented build must not share the main one.
unset CARGO_TARGET_DIR
# seed TARGET FILE...: copies the files that exist into TARGET's corpus.
seed() {
  local dir="corpus/$1"
  shift
  mkdir -p "$dir"
  for f in "$@"; do
    if [ -f "$f" ]; then cp -n "$f" "$dir/" 2>/dev/null || true; fi
  done
}
targets="${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}"
for target in $targets; do
  case "$target" in
    connector_claims) seed "$target" ../tests/fixtures/connector/*.json ;;
    extension_body) seed "$target" ../tests/fixtures/*/*.json ;;
    *) mkdir -p "corpus/$target" ;;
  esac
  printf '\n== fuzz %s for %ss\n' "$target" "$seconds"
  cargo +nightly fuzz run "$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
done
