#!/usr/bin/env bash
# The verification page's test needs Debian's chromium, and building the verifier to
# WebAssembly needs clang and llvm-ar (ring's C for wasm32): installed only when missing,
# then the module is built (pruntime/verify/web/build.sh). Exit 3: this machine cannot
# build it (no wasm32 target, no apt), and the browser test will say it skips.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
{ command -v clang-14 >/dev/null 2>&1 || command -v clang >/dev/null 2>&1; } || need+=(clang-14)
{ command -v llvm-ar-14 >/dev/null 2>&1 || command -v llvm-ar >/dev/null 2>&1; } || need+=(llvm-14)
if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-browser: no apt-get here to install ${need[*]}" >&2
    exit 3
  fi
  echo "Installing ${need[*]} (Debian packages) for the verification page and its browser test." >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/verify-web" \
  pruntime/verify/web/build.sh
