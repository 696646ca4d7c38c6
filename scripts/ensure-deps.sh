#!/usr/bin/env bash
# What a build needs beyond the Rust toolchain, installed only when missing, saying
# what and why. Called by `make devnet`, `make test` and .ci/run.
set -euo pipefail

need=()
# rocksdb's Rust bindings are generated at build time by bindgen, which loads libclang.
if ! ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; then
  need+=(libclang-dev)
fi
# rocksdb itself is C++.
command -v c++ >/dev/null 2>&1 || need+=(g++)
# The pRuntime availability tests stop workers with SIGTERM through `kill` (procps,
# missing from minimal images).
type -P kill >/dev/null 2>&1 || need+=(procps)
# The attestation service's cluster tests share single use of nonces through Redis.
type -P redis-server >/dev/null 2>&1 || need+=(redis-server)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "Installing ${need[*]} (Debian packages): rocksdb's C++ and its bindgen bindings, and the tests (Redis for the attestation cluster), need them; one time only." >&2
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
if ! command -v apt-get >/dev/null 2>&1; then
  echo "No apt-get here: install ${need[*]} (or your system's libclang and a C++ compiler) by hand." >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
echo "Installed ${need[*]}." >&2
