#!/usr/bin/env bash
# Light crates stay light: the verifier, the claims crate, the worker-side client and the
# contract runtime must not pull rocksdb, axum, rcgen or a gRPC server (tonic's
# `server`/`router`, hyper's server). The worker (pRuntime) links the verifier, the
# claims crate, the registry's light client and the key-fetch client, never a
# gatekeeper's store or server: no rocksdb, keyvault, attestation service or gRPC server
# (it answers queries over HTTP, so axum is allowed). The TEE layer pulls nothing above
# it; the production binaries carry no simulated PKI or TEE; and every crate's
# dependencies on the workspace's crates point down the layers listed at the end.
# Checked on each crate's own dependency resolution, as an outside consumer gets it.
set -euo pipefail
cd "$(dirname "$0")/.."

light='^(rocksdb|librocksdb-sys|phalanx-rocksdb|axum|rcgen|tonic-health|tonic-reflection) |^tonic feature "(server|router)"|^hyper feature "server"'
worker='^(rocksdb|librocksdb-sys|phalanx-rocksdb|keyvault|attestation-service|tonic-health|tonic-reflection) |^tonic feature "(server|router)"'
fail=0

# check FORBIDDEN WHAT SPEC: SPEC (a package and its flags) pulls nothing FORBIDDEN matches.
check() {
  local forbidden="$1" what="$2" spec="$3" hits count
  read -r -a args <<<"$spec"
  # Deduplicated: every package and feature node still appears at least once (repeats
  # are marked `(*)`); the full tree of pRuntime is gigabytes.
  hits="$(cargo tree --locked -p "${args[@]}" -e normal,features --prefix none |
    sed 's/ (\*)$//' | grep -E "$forbidden" | sort -u || true)"
  count="$(cargo tree --locked -p "${args[@]}" -e normal --prefix none | sed 's/ (\*)//' | sort -u | wc -l)"
  if [ -n "$hits" ]; then
    echo "check-deps: $spec pulls what it must not:" >&2
    echo "$hits" >&2
    fail=1
  else
    echo "check-deps: $spec: $count packages, none of $what"
  fi
}

for spec in "phalanx-dcap" "phalanx-dcap --features pccs" "phalanx-ear" "phalanx-release --features client" "phalanx-threshold" "phalanx-contract" "phalanx-verify"; do
  check "$light" "rocksdb, axum, rcgen, a gRPC server" "$spec"
done
for spec in "phalanx-pruntime" "phalanx-attested"; do
  check "$worker" "rocksdb, keyvault, the attestation service, a gRPC server" "$spec"
done

# The TEE layer sits under both the worker and the gatekeeper: none of the verifier, the
# clients, the layers above it, an HTTP stack, a server or the simulated PKI.
tee='^(phalanx-verify|phalanx-release|chain|phalanx-attested|phalanx-pruntime|keyvault|phalanx-dcap-sim|reqwest|hyper|tonic|axum|tokio|rocksdb|librocksdb-sys|phalanx-rocksdb) '
check "$tee" "the verifier, the clients, an HTTP stack, the simulated PKI" "phalanx-tee"

# Production binaries carry no simulated PKI and no sim backend: each as its image and
# its unit build it (deploy/docker/Dockerfile: the attestation service alone, then the
# gatekeeper and the worker together, then the ledger's CLI without its `sim` feature;
# the dev image's CLI, with it, apart).
sim='^phalanx-dcap-sim |^phalanx-tee feature "sim"|^phalanx-pruntime feature "sim"|^attestation-service feature "sim"|^chain feature "sim"'
check "$sim" "the simulated PKI or TEE" "attestation-service"
check "$sim" "the simulated PKI or TEE" "keyvault -p phalanx-pruntime"
check "$sim|^phalanx-cli feature \"sim\"|^keyvault feature \"sim\"" "the simulated PKI or TEE" "phalanx-cli --no-default-features"

# Layers: each crate depends (normal dependencies, optional ones included) only on the
# workspace crates listed for it, and each of those sits in a lower layer, so every
# arrow points down. A new arrow is a decision: add it here, in its layer.
cargo metadata --locked --format-version 1 --no-deps | python3 -c '
import json, sys
layers = [
    ["phalanx-types", "phalanx-proto", "phalanx-rocksdb"],
    ["phalanx-dcap", "phalanx-threshold", "phalanx-contract"],
    ["phalanx-ear", "phalanx-dcap-sim"],
    ["phalanx-tee", "phalanx-release", "chain"],
    ["phalanx-verify", "attestation-service"],
    ["phalanx-attested"],
    ["keyvault", "phalanx-pruntime"],
    ["phalanx-cli"],
]
allowed = {
    "phalanx-types": [], "phalanx-proto": [], "phalanx-rocksdb": [],
    "phalanx-dcap": ["phalanx-types"],
    "phalanx-threshold": ["phalanx-types"],
    "phalanx-contract": ["phalanx-types"],
    "phalanx-ear": ["phalanx-dcap", "phalanx-types"],
    "phalanx-dcap-sim": ["phalanx-dcap"],
    "phalanx-tee": ["phalanx-types", "phalanx-dcap-sim"],
    "phalanx-release": ["phalanx-ear", "phalanx-proto", "phalanx-threshold", "phalanx-types"],
    "chain": ["phalanx-dcap", "phalanx-dcap-sim", "phalanx-ear", "phalanx-proto",
              "phalanx-rocksdb", "phalanx-threshold", "phalanx-types"],
    "phalanx-verify": ["chain", "phalanx-dcap", "phalanx-ear", "phalanx-release", "phalanx-types"],
    "attestation-service": ["phalanx-dcap", "phalanx-dcap-sim", "phalanx-ear", "phalanx-proto",
                            "phalanx-rocksdb", "phalanx-types"],
    "phalanx-attested": ["chain", "phalanx-ear", "phalanx-release", "phalanx-tee",
                         "phalanx-types", "phalanx-verify"],
    "keyvault": ["chain", "phalanx-attested", "phalanx-ear", "phalanx-proto", "phalanx-release",
                 "phalanx-rocksdb", "phalanx-tee", "phalanx-threshold", "phalanx-types"],
    "phalanx-pruntime": ["chain", "phalanx-attested", "phalanx-contract", "phalanx-dcap",
                         "phalanx-dcap-sim", "phalanx-ear", "phalanx-release", "phalanx-tee",
                         "phalanx-threshold", "phalanx-types", "phalanx-verify"],
    "phalanx-cli": ["attestation-service", "chain", "keyvault", "phalanx-attested",
                    "phalanx-contract", "phalanx-dcap-sim", "phalanx-ear", "phalanx-proto",
                    "phalanx-pruntime", "phalanx-tee", "phalanx-types", "phalanx-verify"],
}
layer = {c: i for i, cs in enumerate(layers) for c in cs}
bad = []
for c, deps in allowed.items():
    bad += [f"{c} (layer {layer[c]}) may not use {d} (layer {layer[d]})" for d in deps if layer[d] >= layer[c]]
m = json.load(sys.stdin)
names = {p["name"] for p in m["packages"]}
for p in m["packages"]:
    if p["name"] not in layer:
        bad.append(f"{p['name']} is in no layer")
        continue
    uses = {d["name"] for d in p["dependencies"] if d["kind"] is None and d["name"] in names}
    uses.discard(p["name"])
    if p["name"] not in allowed:
        bad.append(f"{p['name']} has no list of allowed dependencies")
        continue
    bad += [f"{p['name']} depends on {d}, not among its allowed" for d in sorted(uses - set(allowed[p["name"]]))]
for b in bad:
    print("check-deps: " + b, file=sys.stderr)
if bad:
    sys.exit(1)
print(f"check-deps: {len(names)} crates in {len(layers)} layers, every arrow down")
' || fail=1
exit $fail
