#!/usr/bin/env bash
# One build: after `make test`, the other commands a user types must not compile
# rocksdb's C++ again. Each build below must report librocksdb-sys `Fresh` (cargo -v);
# a `Compiling librocksdb-sys` means a feature of its build cone differs between
# commands: add it to proto/rocksdb/Cargo.toml. Run by .ci/run after the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

check() {
  local log
  log="$(mktemp)"
  if ! "$@" -v >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "one-build check: \`$*\` failed" >&2
    exit 1
  fi
  if grep -q "Compiling librocksdb-sys" "$log"; then
    echo "one-build check: \`$*\` compiled librocksdb-sys again" >&2
    exit 1
  fi
  if grep -q "Fresh librocksdb-sys" "$log"; then
    echo "one-build check: \`$*\`: librocksdb-sys fresh"
  else
    echo "one-build check: \`$*\` did not build rocksdb at all" 
  fi
  rm -f "$log"
}

check cargo build --locked -p phalanx-cli --bin phalanx
check cargo build --locked -p keyvault --bin keyvault
check cargo build --locked -p attestation-service --bin attestation-service
check cargo test --locked -p chain --no-run
check cargo clippy --locked -p keyvault --all-targets
# The load generators' build (no debug assertions in dependencies) keeps rocksdb's.
scripts/lib/load-build.sh --check
