# Guestlist — the two commands a newcomer needs: `make demo` and `make test`.
# Targets are thin: the work is in scripts/.
.PHONY: demo test bench e2e bindings fmt lint setup fuzz package

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

bench:
	bash scripts/bench.sh

e2e:
	bash scripts/e2e.sh

# The desktop app's .deb and .rpm (PROFILE=release for an optimised build).
package:
	bash scripts/package.sh

# Fuzz every parser of untrusted bytes, FUZZ_SECONDS (default 60) each; not part of `make test`.
fuzz:
	bash scripts/fuzz.sh

bindings:
	bash scripts/check-bindings.sh

setup:
	bash scripts/setup.sh all

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
