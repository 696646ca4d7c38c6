#!/usr/bin/env bash
# pRuntime load benchmark (cli/examples/queryload.rs): the devnet in-process, queries
# against its worker at each concurrency (throughput, p50, p99), and the end-to-end
# latency of a command from submission to being applied.
#
#   scripts/queryload.sh [SECONDS] [CONCURRENCY,...]
#
# Built without debug assertions in its dependencies and without a second rocksdb
# build (scripts/lib/load-build.sh says how). Dev profile, like the other load scripts:
# compare ratios, not absolute times.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(scripts/lib/load-build.sh phalanx-cli queryload)
exec "$bin" "${1:-5}" "${2:-1,4,16}"
