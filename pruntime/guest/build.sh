#!/usr/bin/env bash
# Builds the example contracts for wasm32-unknown-unknown into OUT_DIR (default: wasm/,
# the committed modules). Paths are remapped so the bytes do not depend on where the
# repository or the cargo registry live; CI rebuilds and compares.
set -euo pipefail
cd "$(dirname "$0")"
out="${1:-wasm}"
mkdir -p "$out"
export CARGO_TARGET_DIR="${GUEST_TARGET_DIR:-${CARGO_TARGET_DIR:-$HOME/.cache/phalanx-target}/guest}"
# A 64 KiB stack instead of rustc's 1 MiB: every call instantiates the module afresh, and
# zeroing unused memory was most of a small call's cost.
export RUSTFLAGS="--remap-path-prefix=$PWD=/guest --remap-path-prefix=$HOME=/home -C link-arg=-zstack-size=65536"
cargo build --locked --release --target wasm32-unknown-unknown \
  -p phalanx-example-counter -p phalanx-example-auction \
  -p phalanx-example-vote -p phalanx-example-vault -p phalanx-example-token
# The market alone: built beside the token, its dependency would take the token's
# `entry` feature (features unify within one build) and export its entry points too.
cargo build --locked --release --target wasm32-unknown-unknown -p phalanx-example-market
for c in counter auction vote vault token market; do
  cp "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/phalanx_example_$c.wasm" "$out/$c.wasm"
done
