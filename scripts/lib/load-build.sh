#!/usr/bin/env bash
# Builds a load generator (an example) without debug assertions or overflow checks in
# its dependencies, so the network side of a load run is not taxed more than the
# in-process floor it is judged against, and prints the binary's path.
#
#   scripts/lib/load-build.sh PACKAGE EXAMPLE
#   scripts/lib/load-build.sh --check    fails if these settings would compile
#                                        rocksdb again for any load generator
#
# Without a second rocksdb build: `profile.dev.package."*"` also reaches build
# dependencies, so switching it for everything would rebuild librocksdb-sys's build
# script and with it the C++ (about 20 minutes). The crates of that build's cone (read
# from `cargo tree`, so it follows the lock file) keep the workspace's settings; every
# other dependency loses its assertions. The package itself is optimised (opt-level 3),
# as its dependencies already are (opt-level 2, Cargo.toml).
set -euo pipefail
cd "$(dirname "$0")/../.."
check=false
if [ "${1:-}" = --check ]; then
  check=true
  set -- keyvault releaseload
fi
package=$1
example=$2
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/phalanx-target}"
config=(
  --config 'profile.dev.package."*".debug-assertions=false'
  --config 'profile.dev.package."*".overflow-checks=false'
  --config "profile.dev.package.$package.opt-level=3"
  --config "profile.dev.package.$package.debug-assertions=false"
  --config "profile.dev.package.$package.overflow-checks=false"
)
# phalanx-rocksdb pins the cone's features, so its tree is the cone every build has.
cone=$(cargo tree --locked -q -p phalanx-rocksdb -e normal,build --prefix none --format '{p}' \
  | awk '{ print $1 }' | sort -u)
[ -n "$cone" ] || { echo "load-build: librocksdb-sys's build cone is empty" >&2; exit 1; }
for crate in $cone; do
  config+=(--config "profile.dev.package.$crate.debug-assertions=true"
    --config "profile.dev.package.$crate.overflow-checks=true")
done
if $check; then
  # Cargo decides what is stale for the whole build before it compiles anything: let it
  # get that far (its first "Compiling"), stop it, and read its reasons.
  log=$(mktemp)
  for target in "keyvault releaseload" "attestation-service loadgen" "phalanx-cli queryload"; do
    set -- $target
    CARGO_LOG=cargo::core::compiler::fingerprint=info \
      cargo build --locked -v "${config[@]}" -p "$1" --example "$2" >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do
      grep -qE "^ *(Compiling|Finished) " "$log" && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if ! grep -q "cargo::core::compiler::fingerprint" "$log"; then
      echo "load-build: cargo logged no fingerprint decisions for $2: cannot tell" >&2
      exit 1
    fi
    if grep -E "fingerprint (error|dirty)" "$log" | grep -qE "librocksdb-sys|lz4-sys|bindgen"; then
      echo "load-build: the settings for $2 would compile librocksdb-sys again (a crate of its cone is not pinned)" >&2
      exit 1
    fi
    echo "load-build: $2 keeps the one rocksdb build"
  done
  rm -f "$log"
  exit 0
fi
cargo build --locked -q "${config[@]}" -p "$package" --example "$example" >&2
echo "$CARGO_TARGET_DIR/debug/examples/$example"
