#!/usr/bin/env bash
# Light crates stay light: the verifier, the claims crate, the worker-side client and the
# contract runtime must not pull rocksdb, axum, rcgen or a gRPC server (tonic's
# `server`/`router`, hyper's server). The worker (pRuntime) links the verifier, the
# claims crate, the registry's light client and the key-fetch client, never a
# gatekeeper's store or server: no rocksdb, keyvault, attestation service or gRPC server
# (it answers queries over HTTP, so axum is allowed). Checked on each crate's own
# dependency resolution, as an outside consumer gets it.
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
for spec in "phalanx-pruntime" "phalanx-tee"; do
  check "$worker" "rocksdb, keyvault, the attestation service, a gRPC server" "$spec"
done
exit $fail
