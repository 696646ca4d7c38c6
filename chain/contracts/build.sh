#!/usr/bin/env bash
# Compiles Registry.sol with solcjs into Registry.json ({"abi", "bytecode"}), the
# artifact the `evm` feature embeds. Usage: build.sh SOLCJS [OUT]
# CI runs it into a temporary file and compares with the committed Registry.json.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
solcjs="$1"
out="${2:-$here/Registry.json}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$here" && "$solcjs" --bin --abi --optimize --optimize-runs 200 -o "$tmp" Registry.sol >/dev/null)
node -e '
const fs = require("fs");
const [abi, bin, out] = process.argv.slice(1);
const artifact = { abi: JSON.parse(fs.readFileSync(abi, "utf8")), bytecode: "0x" + fs.readFileSync(bin, "utf8").trim() };
fs.writeFileSync(out, JSON.stringify(artifact, null, 1) + "\n");
' "$tmp/Registry_sol_Registry.abi" "$tmp/Registry_sol_Registry.bin" "$out"
