#!/usr/bin/env bash
# Key-release load benchmark (keyvault/examples/releaseload.rs): five gatekeepers on
# loopback, workers fetching keys, against the CPU floor measured in the same run.
#
#   scripts/releaseload.sh [SECONDS] [CONCURRENCY,...]
#
# Built without debug assertions in its dependencies and without a second rocksdb
# build (scripts/lib/load-build.sh says how).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(scripts/lib/load-build.sh keyvault releaseload)
exec "$bin" "${1:-5}" "${2:-1,4,16}"
