#!/usr/bin/env bash
# Every benchmark of the performance targets in one go, then one markdown table: each
# path, ours, the reference measured in the same run (dcap-qvl, in-process, the CPU
# floor), the ratio and the target (scripts/bench-report.py builds it).
#
#   scripts/bench-report.sh [--quick] [OUT.md]
#
# --quick: shorter criterion runs (1 s warm-up, 2 s measurement) and 3 s load levels,
# for a look in a few minutes; without it the defaults (about 15 minutes here, after the
# first build). Writes OUT.md (default $CARGO_TARGET_DIR/bench-report.md) and prints it.
# No rocksdb is built: the criterion benches are of crates without it, and the load
# generators use the test build's examples.
set -euo pipefail
cd "$(dirname "$0")/.."
# The build `make devnet` and `make test` made (cargo's default) unless told otherwise.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

crit=()
secs=5
if [ "${1:-}" = "--quick" ]; then
  crit=(--warm-up-time 1 --measurement-time 2)
  secs=3
  shift
fi
out="${1:-$CARGO_TARGET_DIR/bench-report.md}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

bench() {
  echo "bench-report: cargo bench $*" >&2
  cargo bench --locked -q "$@" -- "${crit[@]}" >"$work/bench.log" 2>&1 \
    || { cat "$work/bench.log" >&2; exit 1; }
}
bench -p phalanx-dcap --bench verify
bench -p phalanx-release --bench release
# The registry's rules and light client without the ledger (and its rocksdb).
bench -p chain --no-default-features --bench chain
bench -p phalanx-verify --bench verify
# A contract call against native Rust, and a call between contracts.
bench -p phalanx-contract --bench call
# A worker catching up: on the ledger (pages verified and run), and over the Solidity
# registry's logs on anvil (fetched and verified; without rocksdb).
bench -p phalanx-pruntime --bench feed
# A worker's own costs: queries, checkpoints, and the state root against the contract's
# size (its setup builds a 10⁵-entry contract: about a minute).
bench -p phalanx-pruntime --bench worker
ANVIL="$(scripts/ensure-evm.sh)" bench -p chain --no-default-features --features evm --bench evm_feed

echo "bench-report: the attestation service's load ($secs s per level)" >&2
scripts/loadbench.sh "$secs" 1,4,16,64 >"$work/load.txt"
echo "bench-report: key release under load ($secs s per level)" >&2
scripts/releaseload.sh "$secs" 1,4,16 >"$work/release.txt"

python3 scripts/bench-report.py "$CARGO_TARGET_DIR/criterion" "$work/load.txt" "$work/release.txt" >"$out"
{
  echo
  echo '<details><summary>load generators, raw</summary>'
  echo
  echo '```'
  cat "$work/load.txt" "$work/release.txt"
  echo '```'
  echo '</details>'
} >>"$out"
cat "$out"
