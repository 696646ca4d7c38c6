#!/usr/bin/env bash
# Builds the verifier for the browser: www/phalanx_verify.wasm next to www/index.html.
# Needs the wasm32-unknown-unknown target and clang (ring's C for wasm32); says which is
# missing and exits 3 when it cannot build, so callers can skip only this.
set -euo pipefail
cd "$(dirname "$0")"
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || {
    echo "verify-web: the wasm32-unknown-unknown target cannot be installed here" >&2
    exit 3
  }
fi
cc="$(command -v clang-14 || command -v clang || true)"
ar="$(command -v llvm-ar-14 || command -v llvm-ar || true)"
if [ -z "$cc" ] || [ -z "$ar" ]; then
  echo "verify-web: clang and llvm-ar are needed (apt-get install clang-14 llvm-14)" >&2
  exit 3
fi
export CC_wasm32_unknown_unknown="$cc" AR_wasm32_unknown_unknown="$ar"
target="${CARGO_TARGET_DIR:-target}"
cargo build --locked --release --target wasm32-unknown-unknown
cp "$target/wasm32-unknown-unknown/release/phalanx_verify_web.wasm" www/phalanx_verify.wasm
echo "verify-web: www/phalanx_verify.wasm ($(stat -c %s www/phalanx_verify.wasm) bytes)"
