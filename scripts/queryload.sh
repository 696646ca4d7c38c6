#!/usr/bin/env bash
# pRuntime load benchmark (cli/examples/queryload.rs): the devnet in-process, queries
# against its worker at each concurrency (throughput, p50, p99), and the end-to-end
# latency of a command from submission to being applied.
#
#   scripts/queryload.sh [SECONDS] [CONCURRENCY,...]
#
# Built by the workspace's test build (which compiles examples), so it shares the
# rocksdb build of `cargo test --workspace` instead of compiling rocksdb again. Debug
# profile, like the other load scripts: compare ratios, not absolute times.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/phalanx-target}"
cargo test --workspace --locked --no-run -q
exec "$CARGO_TARGET_DIR/debug/examples/queryload" "${1:-5}" "${2:-1,4,16}"
