#!/usr/bin/env bash
# Load benchmark of the attestation service: throughput and p50/p99 at several
# concurrency levels over HTTP on loopback, against in-process verification in the
# same run (see attestation-service/examples/loadgen.rs).
#
#   scripts/loadbench.sh [SECONDS] [CONCURRENCY,...]
#
# Built in the dev profile with the attestation-service crate optimised (opt-level 3;
# dependencies are opt-level 2 in this workspace), so the rocksdb build is shared with
# the tests instead of compiling it again for the release profile.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/phalanx-target}"
exec cargo run --locked -q \
  --config 'profile.dev.package.attestation-service.opt-level=3' \
  --config 'profile.dev.package.attestation-service.debug-assertions=false' \
  --config 'profile.dev.package.attestation-service.overflow-checks=false' \
  -p attestation-service --example loadgen -- "${1:-5}" "${2:-1,4,16,64}"
