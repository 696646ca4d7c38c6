#!/usr/bin/env bash
# The EVM registry's toolchain, from npm at pinned versions, installed once into
# $PHALANX_NPM_DIR (default ~/.cache/phalanx-npm): anvil, the local chain of the EVM
# tests, and solc, which compiles chain/contracts/Registry.sol (CI checks the committed
# artifacts against it). Prints anvil's path. Where npm is missing it says so and prints
# nothing, so the EVM tests skip — unless PHALANX_REQUIRE_ANVIL is set (CI), where that
# is a failure. Called by `make test` and .ci/run.
set -euo pipefail
dir="${PHALANX_NPM_DIR:-$HOME/.cache/phalanx-npm}"
pins="solc@0.8.30 @foundry-rs/anvil-linux-amd64@1.7.1"
anvil="$dir/node_modules/.bin/anvil"
if [ "$(cat "$dir/.phalanx-pins" 2>/dev/null || true)" != "$pins" ] || [ ! -x "$anvil" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    if [ -n "${PHALANX_REQUIRE_ANVIL:-}" ]; then
      echo "ensure-evm: npm is missing, and PHALANX_REQUIRE_ANVIL is set: install Node.js 20 and npm" >&2
      exit 1
    fi
    echo "ensure-evm: npm is missing, so anvil cannot be installed: the EVM tests will skip (install Node.js 20 and npm)" >&2
    exit 0
  fi
  echo "ensure-evm: installing $pins from npm into $dir (the EVM registry's chain and compiler), one time only" >&2
  mkdir -p "$dir"
  rm -f "$dir/.phalanx-pins"
  # shellcheck disable=SC2086
  npm install --prefix "$dir" --no-audit --no-fund --silent $pins >&2
  if [ ! -x "$anvil" ]; then
    echo "ensure-evm: npm installed no $anvil" >&2
    exit 1
  fi
  echo "$pins" >"$dir/.phalanx-pins"
fi
echo "$anvil"
