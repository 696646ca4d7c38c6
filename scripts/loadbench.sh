#!/usr/bin/env bash
# Load benchmark of the attestation service: throughput and p50/p99 at several
# concurrency levels over HTTP on loopback, against in-process verification in the
# same run (see attestation-service/examples/loadgen.rs).
#
#   scripts/loadbench.sh [SECONDS] [CONCURRENCY,...]
#
# Built without debug assertions in its dependencies and without a second rocksdb
# build (scripts/lib/load-build.sh says how).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(scripts/lib/load-build.sh attestation-service loadgen)
exec "$bin" "${1:-5}" "${2:-1,4,16,64}"
