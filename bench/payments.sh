#!/usr/bin/env bash
# What the Idempotency-Key store costs, on one server (bench/keyless: palisade's
# application with one more route, the payment handler's path without the key store):
#
# 1. POST /api/v1/payments with a fresh key per request against POST
#    /api/v1/bench/payments (no key), alternating rounds, median ratio. Each round pays
#    1 cent on 16 new contracts of its own, round robin.
# 2. Replays: one key sent again and again after its first request was answered (every
#    request is answered from the store), against the fresh-key rate of the same round.
#
# On SQLite by default; BENCH_DB=postgres uses a database of its own on the local
# PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432), dropped at exit.
# Targets 127.0.0.1 only; every run is bounded.
#
# Usage: [BENCH_DB=postgres] bench/payments.sh [rounds=3] [seconds=10] [connections=32]
# Needs: wrk, curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/lib.sh
cargo build --release -q -p palisade-bench-keyless
keyless_bin=$(realpath "$target/release/palisade-bench-keyless")

export PALISADE_RATE_LIMIT_GENERAL=1000000000/1s PALISADE_RATE_LIMIT_PAYMENT=1000000000/1s
bench_database
server=$(start keyless "$keyless_bin")
access=$(payer "$server")
export TOKEN=$access

# new_contracts → 16 new active contracts of 10^12 cents, comma-separated.
new_contracts() {
  local ids=()
  for _ in $(seq 1 16); do ids+=("$(active_contract "$server" "$access")"); done
  (IFS=,; echo "${ids[*]}")
}

ratio() { awk -v p="$1" -v b="$2" 'BEGIN { printf "%.3f", p / b }'; }
pay() { CONTRACTS=$(new_contracts) RUN="$1-$$" load "http://$server$2" -s bench/payments.lua; }

# replay RUN: the first request under one key answered, then that key sent again and
# again (the same body, as bench/payments.lua writes it with KEY=same).
replay() {
  local contracts first
  contracts=$(new_contracts)
  first=${contracts%%,*}
  curl -sf -o /dev/null -X POST "http://$server/api/v1/payments" -H "Authorization: Bearer $access" \
    -H 'content-type: application/json' -H "Idempotency-Key: $1-$$-replay" \
    -d '{"contract_id":"'"$first"'","amount":{"amount_cents":1,"currency":"EUR"},"payment_method":"pm_card_visa"}'
  CONTRACTS=$contracts RUN="$1-$$" KEY=same load "http://$server/api/v1/payments" -s bench/payments.lua
}

# Warm-up, not counted.
seconds_kept=$seconds; seconds=2
pay warm-keyless /api/v1/bench/payments >/dev/null
pay warm-fresh /api/v1/payments >/dev/null
seconds=$seconds_kept

echo "== POST /api/v1/payments: fresh Idempotency-Key per request against no key ($db)"
printf '%-6s %12s %12s %8s %12s %8s\n' round no_key fresh_key ratio replays ratio
ratios=() replays=()
for r in $(seq 1 "$rounds"); do
  k=$(pay "r$r-keyless" /api/v1/bench/payments)
  f=$(pay "r$r-fresh" /api/v1/payments)
  p=$(replay "r$r")
  ratios+=("$(ratio "$f" "$k")")
  replays+=("$(ratio "$p" "$f")")
  printf '%-6d %12s %12s %8s %12s %8s\n' "$r" "$k" "$f" "${ratios[-1]}" "$p" "${replays[-1]}"
done
echo "median ratio fresh key ÷ no key: $(median "${ratios[@]}") (the key store costs $(awk -v m="$(median "${ratios[@]}")" 'BEGIN { printf "%.0f", (1 - m) * 100 }') % of throughput)"
echo "median ratio replays ÷ fresh-key payments: $(median "${replays[@]}")"
