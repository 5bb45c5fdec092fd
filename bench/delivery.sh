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
#    connection (users × 5 of each), each on a fresh server, in rounds.
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
token=$(payer "$one")
contract=$(active_contract "$one" "$token")

echo "== event → stream, one instance ($db)"
"$delivery_bin" latency --send "$one" --stream "$one" --token "$token" --contract "$contract" --events "$events"
if [ "$db" = postgres ]; then
  two=$(start two "$palisade_bin" serve)
  echo "== event → stream, paid on one instance, streamed from another ($db)"
  "$delivery_bin" latency --send "$one" --stream "$two" --token "$token" --contract "$contract" --events "$events"
fi

echo "== memory per idle stream against per idle keep-alive connection ($db), each on a fresh server"
printf '%-6s %16s %16s %8s\n' round connection_B stream_B ratio
ratios=()
for r in $(seq 1 "$rounds"); do
  c_addr=$(start "conn$r" "$palisade_bin" serve)
  c=$("$delivery_bin" streams --kind connections --api "$c_addr" --pid "$(cat "$work/conn$r/pid")" --users "$users")
  kill "$(cat "$work/conn$r/pid")"
  s_addr=$(start "stream$r" "$palisade_bin" serve)
  s=$("$delivery_bin" streams --kind streams --api "$s_addr" --pid "$(cat "$work/stream$r/pid")" --users "$users")
  kill "$(cat "$work/stream$r/pid")"
  ratios+=("$(awk -v s="$s" -v c="$c" 'BEGIN { printf "%.2f", s / c }')")
  printf '%-6d %16s %16s %8s\n' "$r" "$c" "$s" "${ratios[-1]}"
done
echo "median ratio stream ÷ connection: $(median "${ratios[@]}") ($((users * 5)) of each)"
