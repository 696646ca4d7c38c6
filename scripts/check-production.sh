#!/usr/bin/env bash
# Production builds carry no simulated TEE: the gatekeeper and the worker built as their
# images build them (deploy/docker/Dockerfile: together, without the CLI), and the
# ledger's CLI without its `sim` feature, refuse the `sim` backend and say why, instead
# of quoting from a simulated PKI. What they link is
# checked by scripts/check-deps.sh; this runs them. Run by .ci/run after the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
# The builds without the simulated TEE have their own cfg branches: lint them too.
cargo clippy --locked -p keyvault -p phalanx-pruntime -p phalanx-tee -- -D warnings
cargo clippy --locked -p phalanx-cli --no-default-features -- -D warnings
# Into the shared target dir: the test binaries are relinked by cargo when next built
# with the workspace's features (nothing runs target/debug/{pruntime,keyvault} directly).
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

# A gatekeeper configured for the simulated TEE (nothing else in it matters here).
cat >"$dir/gatekeeper.toml" <<TOML
index = 1
data_dir = "$dir/gk"
[listen]
client = "127.0.0.1:7101"
peer = "127.0.0.1:7201"
[tls]
ca_cert = "$dir/ca.pem"
cert = "$dir/cert.pem"
[attestation]
jwks_file = "$dir/jwks.json"
service_url = "http://127.0.0.1:9"
policy = "gatekeeper"
[tee]
backend = "sim"
[policy]
issuer = "http://127.0.0.1:9"
trust_roots = ["intel"]
TOML
# And one outside any TEE that would trust tokens of the simulated root.
sed -e '/^\[tee\]$/d' -e '/^backend = "sim"$/d' -e 's/^trust_roots = .*/trust_roots = ["sim"]/' \
  "$dir/gatekeeper.toml" >"$dir/trusting-sim.toml"
expect "keyvault trusting the simulated root" timeout 60 "$target/debug/keyvault" \
  --config "$dir/trusting-sim.toml" init
expect "keyvault with [tee] backend = \"sim\"" timeout 60 "$target/debug/keyvault" \
  --config "$dir/gatekeeper.toml" init

# The production ledger's `phalanx` (the CLI without `sim`): no devnet, and its
# `pruntime` and `gatekeeper` commands refuse the simulated TEE too.
cargo build --locked -p phalanx-cli --no-default-features --bin phalanx
expect "phalanx (no sim) pruntime --tee sim" timeout 60 "$target/debug/phalanx" pruntime \
  --tee sim --data-dir "$dir/worker" --attestation-url http://127.0.0.1:9 \
  --registry-url http://127.0.0.1:9 --genesis "$(printf '0%.0s' {1..64})"
if "$target/debug/phalanx" devnet --help >/dev/null 2>&1; then
  echo "check-production: the ledger's phalanx has a devnet" >&2
  fail=1
else
  echo "check-production: the ledger's phalanx has no devnet"
fi
exit $fail
