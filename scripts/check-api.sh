#!/usr/bin/env bash
# The API document is exact: schemathesis (PyPI, pinned) generates requests from the
# attestation service's openapi.json, sends them to the live service (Intel's root, an
# admin token, loopback) and runs all its checks: no server error, every response as
# documented, valid requests accepted (attestation-service/schemathesis.toml says what
# "accepted" means), invalid ones refused, authentication enforced.
set -euo pipefail
cd "$(dirname "$0")/.."
# The build `make devnet` and `make test` made (cargo's default) unless told otherwise.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TERM_COLOR=never

venv="${PHALANX_VENV:-$HOME/.cache/phalanx-venv}"
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "4.32.5"; then
  echo "Installing schemathesis 4.32.5 (PyPI) into $venv: it checks openapi.json against the service" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check schemathesis==4.32.5
fi

cargo build -p attestation-service --bin attestation-service --locked
work="$(mktemp -d)"
token="schemathesis-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
cat >"$work/service.toml" <<TOML
data_dir = "data"
[listen]
rest = "127.0.0.1:0"
grpc = "127.0.0.1:0"
[log]
format = "json"
filter = "warn,attestation_service=info"
TOML
PHALANX_AS__admin__token="$token" "$CARGO_TARGET_DIR/debug/attestation-service" \
  --config "$work/service.toml" serve 2>"$work/service.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

rest=""
for _ in $(seq 1 100); do
  rest="$(sed -n 's/.*"rest":"\([0-9.:]*\)".*/\1/p' "$work/service.log" | head -1)"
  [ -n "$rest" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/service.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$rest" ] || { echo "the service did not say where it listens" >&2; cat "$work/service.log" >&2; exit 1; }

"$venv/bin/schemathesis" --config-file attestation-service/schemathesis.toml run \
  "http://$rest/openapi.json" --url "http://$rest" \
  --checks all --max-examples "${PHALANX_API_EXAMPLES:-25}" --seed 1 \
  -H "Authorization: Bearer $token" --no-color
