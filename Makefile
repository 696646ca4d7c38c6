# The README's two commands. Each installs what a fresh Debian machine lacks first
# (scripts/ensure-deps.sh says what and why), then runs plain cargo.
#
#   make devnet            the whole system on loopback until Ctrl-C (ARGS=--once: stop after the demo;
#                          ARGS=--chain=anvil: on the Solidity registry, installing anvil first)
#   make test              every test of the workspace (what .ci/run calls), then the example
#                          contracts' own tests in the off-chain harness (pruntime/guest)

.PHONY: devnet test deps

deps:
	@scripts/ensure-deps.sh

devnet: deps
	@case "$(ARGS)" in *anvil*) anvil="$$(scripts/ensure-evm.sh)" && export ANVIL="$${ANVIL:-$$anvil}";; esac; \
	cargo run -p phalanx-cli -- devnet $(ARGS)

test: deps
	anvil="$$(scripts/ensure-evm.sh)" && ANVIL="$${ANVIL:-$$anvil}" cargo test --workspace --locked
	cd pruntime/guest && CARGO_TARGET_DIR="$${CARGO_TARGET_DIR:-$(CURDIR)/target}/guest-native" cargo test --locked
