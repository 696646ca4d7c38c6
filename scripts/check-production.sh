#!/usr/bin/env bash
# Production builds carry no simulated TEE: the gatekeeper and the worker built as their
# images build them (deploy/docker/Dockerfile: together, without the CLI) refuse the
# `sim` backend and say why, instead of quoting from a simulated PKI. What they link is
# checked by scripts/check-deps.sh; this runs them. Run by .ci/run after the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
# The build without the simulated TEE has its own cfg branches: lint them too.
cargo clippy --locked -p keyvault -p phalanx-pruntime -p phalanx-tee -- -D warnings
cargo build --locked -p keyvault -p phalanx-pruntime --bins
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
fail=0

# expect WHAT COMMAND...: COMMAND fails, naming the missing simulated TEE.
expect() {
  local what="$1" out
  shift
  if out="$("$@" 2>&1)"; then
    echo "check-production: $what started on the simulated TEE" >&2
    fail=1
  elif grep -q "no simulated TEE" <<<"$out"; then
    echo "check-production: $what refuses the simulated TEE and says why"
  else
    echo "check-production: $what failed without naming the missing simulated TEE:" >&2
    echo "$out" | tail -5 >&2
    fail=1
  fi
}

expect "pruntime --tee sim" timeout 60 "$target/debug/pruntime" --tee sim \
  --data-dir "$dir/worker" --attestation-url http://127.0.0.1:9 \
  --registry-url http://127.0.0.1:9 --genesis "$(printf '0%.0s' {1..64})"

# The example config, with a data dir in the temporary directory and [tee] backend sim.
sed -e "s|^data_dir = .*|data_dir = \"$dir/gk\"|" -e 's|^# \[tee\]$|[tee]|' \
  -e 's|^# backend = "sim" .*|backend = "sim"|' -e 's|^# service_url = |service_url = |' \
  -e 's|^# policy = |policy = |' keyvault/config/node.toml >"$dir/gatekeeper.toml"
expect "keyvault with [tee] backend = \"sim\"" timeout 60 "$target/debug/keyvault" \
  --config "$dir/gatekeeper.toml" init
exit $fail
