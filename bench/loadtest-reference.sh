#!/usr/bin/env bash
# The full reference run: `palisade loadtest --profile load --scale 1` (the built-in
# payments, dashboard, exports, notifications and spike scenarios, about 6 minutes)
# against a release palisade on SQLite, then on PostgreSQL + Redis, each on a fresh
# database, the load generator on the same machine. Prints each run's thresholds and
# keeps the summaries and HTML reports in bench/out/ (not committed).
#
# Usage: bench/loadtest-reference.sh [profile=load] [scale=1]
# Targets 127.0.0.1 only; each run stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${1:-load}
scale=${2:-1}
set -- 1 1 1
. bench/lib.sh

out=bench/out
mkdir -p "$out"
export PALISADE_RATE_LIMIT_ALLOW=127.0.0.1/32 PALISADE_MAX_CONNECTIONS_PER_CLIENT=1024
export PALISADE_BILLING_PLANS='[{"id":"free","name":"Free","features":["exports"],"limits":{}}]'

for backend in sqlite postgres; do
  export BENCH_DB=$backend
  if [ "$backend" = postgres ]; then
    export REDIS_URL=${BENCH_REDIS:-redis://127.0.0.1:6379} PALISADE_REDIS_PREFIX="bench_$$:"
  fi
  bench_database
  addr=$(start "palisade-$backend" "$palisade_bin" serve)
  echo "== $backend: palisade loadtest --profile $profile --scale $scale"
  status=0
  "$palisade_bin" loadtest --base-url "http://$addr" --profile "$profile" --scale "$scale" --quiet \
    --summary-export "$out/reference-$backend.json" --report "$out/reference-$backend.html" \
    >"$out/reference-$backend.txt" || status=$?
  sed -n '/█ THRESHOLDS/,/█ TOTAL RESULTS/p' "$out/reference-$backend.txt" | grep -v 'TOTAL RESULTS'
  grep -E 'http_reqs\.|notification_delivery\.|iterations\.|complete and|running for' "$out/reference-$backend.txt"
  echo "exit $status ($backend)"
  kill "$(cat "$work/palisade-$backend/pid")" 2>/dev/null || true
  if [ "$backend" = postgres ]; then
    psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $name WITH (FORCE)"
  fi
done
