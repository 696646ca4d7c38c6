#!/usr/bin/env bash
# Light crates stay light: the verifier, the claims crate, the worker-side client and the
# contract runtime must not pull rocksdb, axum, rcgen or a gRPC server (tonic's
# `server`/`router`, hyper's server). Checked on their own dependency resolution, as an outside consumer gets it.
set -euo pipefail
cd "$(dirname "$0")/.."

forbidden='^(rocksdb|librocksdb-sys|phalanx-rocksdb|axum|rcgen|tonic-health|tonic-reflection) |^tonic feature "(server|router)"|^hyper feature "server"'
fail=0
for spec in "phalanx-dcap" "phalanx-dcap --features pccs" "phalanx-ear" "phalanx-release --features client" "phalanx-threshold" "phalanx-contract"; do
  read -r -a args <<<"$spec"
  tree="$(cargo tree --locked -p "${args[@]}" -e normal,features --prefix none --no-dedupe)"
  hits="$(grep -E "$forbidden" <<<"$tree" | sort -u || true)"
  count="$(cargo tree --locked -p "${args[@]}" -e normal --prefix none | sed 's/ (\*)//' | sort -u | wc -l)"
  if [ -n "$hits" ]; then
    echo "check-deps: $spec pulls what it must not:" >&2
    echo "$hits" >&2
    fail=1
  else
    echo "check-deps: $spec: $count packages, none of rocksdb, axum, rcgen, a gRPC server"
  fi
done

# The worker links the verifier, the claims crate, the registry's light client and the
# key-fetch client, never a gatekeeper's store or server: no rocksdb, no keyvault, no
# attestation service, no gRPC server (it answers queries over HTTP, so axum is allowed).
worker_forbidden='^(rocksdb|librocksdb-sys|phalanx-rocksdb|keyvault|attestation-service|tonic-health|tonic-reflection) |^tonic feature "(server|router)"'
tree="$(cargo tree --locked -p phalanx-pruntime -e normal,features --prefix none --no-dedupe)"
hits="$(grep -E "$worker_forbidden" <<<"$tree" | sort -u || true)"
count="$(cargo tree --locked -p phalanx-pruntime -e normal --prefix none | sed 's/ (\*)//' | sort -u | wc -l)"
if [ -n "$hits" ]; then
  echo "check-deps: phalanx-pruntime pulls what it must not:" >&2
  echo "$hits" >&2
  fail=1
else
  echo "check-deps: phalanx-pruntime: $count packages, none of rocksdb, keyvault, the attestation service, a gRPC server"
fi
exit $fail
