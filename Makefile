# Guestlist — the two commands a newcomer needs: `make demo` and `make test`.
# Targets are thin: the work is in scripts/.
.PHONY: demo test bench e2e fmt lint setup ui-check

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

bench:
	bash scripts/bench.sh

e2e:
	bash scripts/e2e.sh

setup:
	bash scripts/setup.sh all

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
