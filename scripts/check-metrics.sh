#!/usr/bin/env bash
# Starts palisade on a free loopback port, serves a few requests, and checks its
# /metrics exposition with `promtool check metrics` (Debian package `prometheus`).
# Usage: scripts/check-metrics.sh [path/to/palisade]
set -euo pipefail

cd "$(dirname "$0")/.."
bin=$(realpath "${1:-${CARGO_TARGET_DIR:-target}/debug/palisade}")
command -v promtool >/dev/null || { echo "promtool not found: apt-get install prometheus" >&2; exit 1; }
. scripts/lib.sh
serve "$bin"

for path in /health /live /ready /no/such/route /openapi.json; do
  curl -s -o /dev/null "http://$addr$path"
done
curl -s -o /dev/null -X POST -H 'content-type: text/plain' -d x "http://$addr/api/v1/auth/login"
curl -sf "http://$addr/metrics" >"$work/metrics.txt"

grep -q '^# TYPE http_request_duration_seconds histogram' "$work/metrics.txt" || { echo "http_request_duration_seconds missing" >&2; exit 1; }
promtool check metrics <"$work/metrics.txt"
echo "promtool check metrics: OK ($(grep -vc '^#' "$work/metrics.txt") samples)"
