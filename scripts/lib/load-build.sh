#!/usr/bin/env bash
# Builds a load generator (an example) without debug assertions or overflow checks, and
# optimised, in everything it links but rocksdb's build cone, so the network side of a
# load run is not taxed more than the in-process floor it is judged against; prints the
# binary's path.
#
#   scripts/lib/load-build.sh PACKAGE EXAMPLE
#   scripts/lib/load-build.sh --check    fails if these settings would compile
#                                        rocksdb again for any load generator
#
# Without a second rocksdb build: `profile.dev.package."*"` also reaches build
# dependencies, so switching it for everything would rebuild librocksdb-sys's build
# script and with it the C++ (about 20 minutes). The crates of that build's cone (read
# from `cargo tree`, so it follows the lock file) keep the workspace's settings; every
# other dependency loses its assertions, and every workspace crate (which "*" does not
# reach) its assertions too, at opt-level 2 like the dependencies.
set -euo pipefail
cd "$(dirname "$0")/../.."
check=false
if [ "${1:-}" = --check ]; then
  check=true
  set -- keyvault releaseload
fi
package=$1
example=$2
# The build `make devnet` and `make test` made (cargo's default) unless told otherwise.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# Not incremental (cargo's default for dev, off in CI): the load generators are the same
# code whoever builds them, and incremental codegen units are no part of what is measured.
export CARGO_INCREMENTAL=0
config=(
  --config 'profile.dev.package."*".debug-assertions=false'
  --config 'profile.dev.package."*".overflow-checks=false'
)
# phalanx-rocksdb pins the cone's features, so its tree is the cone every build has.
cone=$(cargo tree --locked -q -p phalanx-rocksdb -e normal,build --prefix none --format '{p}' \
  | awk '{ print $1 }' | sort -u)
[ -n "$cone" ] || { echo "load-build: librocksdb-sys's build cone is empty" >&2; exit 1; }
members=$(cargo metadata --locked --no-deps --format-version 1 \
  | python3 -c 'import json, sys; print("\n".join(p["name"] for p in json.load(sys.stdin)["packages"]))')
for crate in $members; do
  grep -qx "$crate" <<<"$cone" && continue
  config+=(--config "profile.dev.package.$crate.opt-level=2"
    --config "profile.dev.package.$crate.debug-assertions=false"
    --config "profile.dev.package.$crate.overflow-checks=false")
done
for crate in $cone; do
  config+=(--config "profile.dev.package.$crate.debug-assertions=true"
    --config "profile.dev.package.$crate.overflow-checks=true")
done

if ! $check; then
  cargo build --locked -q "${config[@]}" -p "$package" --example "$example" >&2
  echo "$CARGO_TARGET_DIR/debug/examples/$example"
  exit 0
fi

# The check: cargo decides what is stale for the whole build before it compiles
# anything. Let it get that far (its first "Compiling"), stop it and everything it
# started, and read its reasons.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in "keyvault releaseload" "attestation-service loadgen" "phalanx-cli queryload"; do
  set -- $target
  CARGO_LOG=cargo::core::compiler::fingerprint=info \
    setsid cargo build --locked -v "${config[@]}" -p "$1" --example "$2" >"$log" 2>&1 &
  pid=$!
  decided=false
  for _ in $(seq 1 600); do
    if grep -qE "^ *(Compiling|Finished) " "$log"; then
      decided=true
      break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -- -"$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if ! $decided; then
    tail -20 "$log" >&2
    echo "load-build: cargo did not get to compiling $2 (above): cannot tell" >&2
    exit 1
  fi
  if grep -qE "fingerprint (error|dirty) for (librocksdb-sys|lz4-sys|bindgen) " "$log"; then
    echo "load-build: the settings for $2 would compile librocksdb-sys again (a crate of its cone is not pinned)" >&2
    exit 1
  fi
  echo "load-build: $2 keeps the one rocksdb build"
done
