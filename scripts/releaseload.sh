#!/usr/bin/env bash
# Key-release load benchmark (keyvault/examples/releaseload.rs): five gatekeepers on
# loopback, workers fetching keys, against the CPU floor measured in the same run.
#
#   scripts/releaseload.sh [SECONDS] [CONCURRENCY,...]
#
# Built by the workspace's test build (which compiles examples), so it shares the
# rocksdb build of `cargo test --workspace` instead of compiling rocksdb again.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/phalanx-target}"
cargo test --workspace --locked --no-run -q
exec "$CARGO_TARGET_DIR/debug/examples/releaseload" "${1:-5}" "${2:-1,4,16}"
