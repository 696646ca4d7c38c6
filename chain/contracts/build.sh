#!/usr/bin/env bash
# Compiles Registry.sol with solc-js into the artifacts the crate embeds (and the
# example AuctionSettlement.sol into AuctionSettlement.json, which its test deploys): Registry.json
# ({"abi", "bytecode"}, for the `evm` feature's bindings) and Registry.runtime (the
# deployed code, for verifiers to check what runs at a registry's address: the byte
# offsets of the `governance` immutable, comma-separated, on the first line; the runtime
# code with zeros there, hex, on the second). Usage: build.sh SOLCJS [OUT_DIR], where
# SOLCJS is the npm package's `solcjs` (its module beside it does the compiling).
# CI runs it into a temporary directory and compares with the committed files.
#
# Through the IR pipeline (`viaIR`), optimized for size (1 run): the runtime code must
# stay under EIP-170's 24,576 bytes, which the legacy pipeline no longer meets (27.6 KB)
# and 200 runs no longer meets since state commitments (25.2 KB; 1 run: 24.5 KB).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
solc_module="$(dirname "$(readlink -f "$1")")"
out="${2:-$here}"
node -e '
const [module, source, out] = process.argv.slice(1);
const solc = require(module);
const fs = require("fs");
const input = {
  language: "Solidity",
  sources: { "Registry.sol": { content: fs.readFileSync(source, "utf8") } },
  settings: {
    optimizer: { enabled: true, runs: 1 },
    viaIR: true,
    // No metadata hash in the code: the runtime changes only when the contract does,
    // not with a comment, so verifiers keep recognising a deployed registry.
    metadata: { appendCBOR: false, bytecodeHash: "none" },
    outputSelection: {
      "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.deployedBytecode.immutableReferences"] },
    },
  },
};
const result = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (result.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
const c = result.contracts["Registry.sol"].Registry;
const runtime = c.evm.deployedBytecode.object.length / 2;
if (runtime > 24576) {
  console.error(`the runtime code is ${runtime} bytes, over the EIP-170 limit of 24576`);
  process.exit(1);
}
const artifact = { abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
fs.writeFileSync(out + "/Registry.json", JSON.stringify(artifact, null, 1) + "\n");
// The only immutable is `governance` (an address in a 32-byte word).
const refs = Object.values(c.evm.deployedBytecode.immutableReferences);
if (refs.length !== 1 || refs[0].some((r) => r.length !== 32)) {
  console.error("expected one immutable (governance) of 32 bytes");
  process.exit(1);
}
const offsets = refs[0].map((r) => r.start).join(",");
fs.writeFileSync(out + "/Registry.runtime", offsets + "\n" + c.evm.deployedBytecode.object + "\n");
' "$solc_module" "$here/Registry.sol" "$out"

# The example that settles a confidential auction on an EVM chain (its tests deploy it
# on anvil): the same compiler and settings, ABI and creation code only.
node -e '
const [module, source, out] = process.argv.slice(1);
const solc = require(module);
const fs = require("fs");
const input = {
  language: "Solidity",
  sources: { "AuctionSettlement.sol": { content: fs.readFileSync(source, "utf8") } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    metadata: { appendCBOR: false, bytecodeHash: "none" },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const result = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (result.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
const c = result.contracts["AuctionSettlement.sol"].AuctionSettlement;
const artifact = { abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
fs.writeFileSync(out + "/AuctionSettlement.json", JSON.stringify(artifact, null, 1) + "\n");
' "$solc_module" "$here/AuctionSettlement.sol" "$out"
