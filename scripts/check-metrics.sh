#!/usr/bin/env bash
# Starts palisade on a free loopback port, serves a few requests, and checks its
# /metrics exposition with `promtool check metrics` (Debian package `prometheus`).
# Usage: scripts/check-metrics.sh [path/to/palisade]
set -euo pipefail

bin=$(realpath "${1:-${CARGO_TARGET_DIR:-target}/debug/palisade}")
command -v promtool >/dev/null || { echo "promtool not found: apt-get install prometheus" >&2; exit 1; }
[ -x "$bin" ] || { echo "no palisade binary at $bin (cargo build first)" >&2; exit 1; }

work=$(mktemp -d)
log="$work/palisade.log"
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

(cd "$work" && PORT=0 exec "$bin" serve >"$log" 2>&1) &
pid=$!
for _ in $(seq 1 100); do
  addr=$(grep -ao '"addr":"[^"]*"' "$log" | head -1 | cut -d'"' -f4 || true)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "${addr:-}" ] || { echo "palisade did not start:" >&2; cat "$log" >&2; exit 1; }

for path in /health /live /ready /no/such/route /openapi.json; do
  curl -s -o /dev/null "http://$addr$path"
done
curl -s -o /dev/null -X POST -H 'content-type: text/plain' -d x "http://$addr/health"
curl -sf "http://$addr/metrics" >"$work/metrics.txt"

grep -q '^# TYPE http_request_duration_seconds histogram' "$work/metrics.txt" || { echo "http_request_duration_seconds missing" >&2; exit 1; }
promtool check metrics <"$work/metrics.txt"
echo "promtool check metrics: OK ($(grep -vc '^#' "$work/metrics.txt") samples)"
