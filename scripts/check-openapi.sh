#!/usr/bin/env bash
# The OpenAPI document against the server that serves it: validates /openapi.json
# (openapi-spec-validator) and runs schemathesis with every check on, anonymously and
# with a member's token, bounded in examples. Both must find nothing.
# Usage: scripts/check-openapi.sh [path/to/palisade]
# Needs `openapi-spec-validator` and `schemathesis` on PATH (.ci/run installs them in a
# venv); `SCHEMATHESIS_EXAMPLES` bounds the examples per operation (default 25).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$(realpath "${1:-${CARGO_TARGET_DIR:-target}/debug/palisade}")
for tool in openapi-spec-validator schemathesis curl; do
  command -v "$tool" >/dev/null || { echo "$tool not found" >&2; exit 1; }
done
examples=${SCHEMATHESIS_EXAMPLES:-25}
config=$(realpath ops/schemathesis.toml)

. scripts/lib.sh
# Loopback is allow-listed so the fuzzing reaches the handlers rather than the rate
# limits (whose 429 the document declares, and the end-to-end tests check).
PALISADE_RATE_LIMIT_ALLOW=127.0.0.0/8 serve "$bin"
base="http://$addr"

curl -sf "$base/openapi.json" >"$work/openapi.json"
openapi-spec-validator "$work/openapi.json"

password="a member's long passphrase 7"
curl -sf "$base/api/v1/auth/register" -H 'content-type: application/json' \
  -d "{\"email\":\"member@example.com\",\"password\":\"$password\",\"name\":\"Member\"}" >/dev/null
token=$(curl -sf "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"email\":\"member@example.com\",\"password\":\"$password\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

# One worker: hypothesis describes strategies with Python's `ast`, which on the
# CPython here fails now and then when two threads use it at once ("AST constructor
# recursion depth mismatch"), a runtime error of the tool rather than a finding.
# Run in the work directory: schemathesis writes a `.schemathesis/` cache where it runs.
run() {
  echo "==> schemathesis ($1)"
  shift
  (cd "$work" && schemathesis --config-file "$config" run "$base/openapi.json" --checks all \
    --max-examples "$examples" --workers 1 --seed 1 "$@")
}
run anonymous
# Signing out would end the session the rest of the run uses.
run "a member's token" -H "Authorization: Bearer $token" --exclude-path /api/v1/auth/logout
