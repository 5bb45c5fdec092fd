#!/usr/bin/env bash
# What delivery costs, each figure against a baseline of the same run:
#
# 1. The job queue: jobs per second enqueued (one transaction each) and run by the
#    worker, against a bare loop inserting the same row into the same table and
#    deleting it (bench/delivery: `queue`), in rounds, median ratio.
# 2. Event to stream: a payment's notification on a live stream of the same instance
#    (and, on PostgreSQL, of a second instance), p50/p99, against the payment request's
#    own round trip.
# 3. Memory per idle notification stream against memory per idle keep-alive
#    connection (users × 5 of each).
#
# On SQLite by default; BENCH_DB=postgres uses a database of its own on the local
# PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432), dropped at exit.
# Targets 127.0.0.1 only; every run is bounded.
#
# Usage: [BENCH_DB=postgres] bench/delivery.sh [rounds=3] [events=200] [users=200]
# Needs: python3, curl (and wrk, for bench/lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/lib.sh
events=${2:-200}
users=${3:-200}
cargo build --release -q -p palisade-bench-delivery
delivery_bin=$(realpath "$target/release/palisade-bench-delivery")

export PALISADE_RATE_LIMIT_GENERAL=1000000000/1s PALISADE_RATE_LIMIT_PAYMENT=1000000000/1s
export PALISADE_RATE_LIMIT_AUTH=1000000000/1s PALISADE_MAX_CONNECTIONS_PER_CLIENT=5000
bench_database

echo "== job queue: jobs through the queue against a bare insert-then-delete loop ($db)"
"$delivery_bin" queue --jobs 2000 --rounds "$rounds"

one=$(start one "$palisade_bin" serve)
printf 'a long benchmark passphrase 4711\n' |
  "$palisade_bin" user create --email payer@example.com --role member >/dev/null
token=$(curl -sf -X POST "http://$one/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"payer@example.com","password":"a long benchmark passphrase 4711"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
contract=$(curl -sf -X POST "http://$one/api/v1/contracts" -H "Authorization: Bearer $token" \
  -H 'content-type: application/json' \
  -d '{"title":"Bench","counterparty":"Acme","amount":{"amount_cents":1000000000000,"currency":"EUR"}}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
curl -sf -o /dev/null -X PATCH "http://$one/api/v1/contracts/$contract" -H "Authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{"status":"active"}'

echo "== event → stream, one instance ($db)"
"$delivery_bin" latency --send "$one" --stream "$one" --token "$token" --contract "$contract" --events "$events"
if [ "$db" = postgres ]; then
  two=$(start two "$palisade_bin" serve)
  echo "== event → stream, paid on one instance, streamed from another ($db)"
  "$delivery_bin" latency --send "$one" --stream "$two" --token "$token" --contract "$contract" --events "$events"
fi

echo "== memory per idle stream ($db)"
"$delivery_bin" streams --api "$one" --pid "$(cat "$work/one/pid")" --users "$users"
