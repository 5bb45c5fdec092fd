#!/usr/bin/env bash
# Business API benchmarks, each against a baseline measured in the same run:
#
# 1. Authenticated GET /api/v1/contracts?limit=20 of a member owning 100 of 10,000
#    contracts, against the baseline server's GET /contracts, which verifies the same
#    JWT and runs the same SELECT (bench/baseline). Alternating rounds, median ratio.
# 2. The cached GET /api/v1/dashboard against palisade's own GET /api/v1/me, same
#    token, alternating rounds, median ratio.
# 3. A CSV export of 200,000 contracts in rows/s against the database's own CSV
#    writer on the same rows (`sqlite3 -csv`, or `psql \copy … to stdout csv`), median
#    of the rounds, with the server's peak RSS.
#
# On SQLite by default; BENCH_DB=postgres uses a database of its own on the local
# PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432), dropped at exit.
# Targets 127.0.0.1 only; every run is bounded.
#
# BENCH_ONLY picks parts (BENCH_ONLY="2 3"); all three by default.
#
# Usage: [BENCH_DB=postgres] [BENCH_ONLY=…] bench/business.sh [rounds=3] [seconds=10] [connections=32]
# Needs: wrk, curl, python3, sqlite3 or psql.
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/lib.sh

export PALISADE_RATE_LIMIT_GENERAL=1000000000/1s PALISADE_RATE_LIMIT_EXPORT=1000000/1s
bench_database

# seed USERS PER_USER → the example member's e-mail and the passphrase, on one line.
seed() {
  "$palisade_bin" db seed --users "$1" --contracts-per-user "$2" | awk '
    /passphrase: / { p = $NF } /for example: / { e = $NF } END { print e, p }'
}
read -r member passphrase < <(seed 100 100)
printf 'a long benchmark passphrase 4711\n' | "$palisade_bin" user create --email boss@example.com --role manager >/dev/null

palisade=$(start palisade "$palisade_bin" serve)
baseline=$(BASELINE_JWT_KEY_FILE="$work/data/jwt-ed25519.pem" BASELINE_DATABASE_URL="$DATABASE_URL" \
  start baseline "$baseline_bin")

token() {
  curl -sf -X POST "http://$palisade/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"$2\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
access=$(token "$member" "$passphrase")
boss=$(token boss@example.com 'a long benchmark passphrase 4711')
n=$(curl -sf -H "Authorization: Bearer $access" "http://$baseline/contracts" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
[ "$n" = 20 ] || { echo "the baseline listed $n contracts, not 20" >&2; exit 1; }
n=$(curl -sf -H "Authorization: Bearer $access" "http://$palisade/api/v1/contracts?limit=20" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
[ "$n" = 20 ] || { echo "palisade listed $n contracts, not 20" >&2; exit 1; }

want() { [[ " ${BENCH_ONLY:-1 2 3} " == *" $1 "* ]]; }

ratio() { awk -v p="$1" -v b="$2" 'BEGIN { printf "%.3f", p / b }'; }

# compare NAME URL_A NAME_B URL_B: alternating rounds of both, the median ratio A ÷ B.
compare() {
  local a_name=$1 a_url=$2 b_name=$3 b_url=$4 ratios=()
  wrk -t1 -c"$conns" -d2s -H "Authorization: Bearer $access" "$a_url" >/dev/null
  wrk -t1 -c"$conns" -d2s -H "Authorization: Bearer $access" "$b_url" >/dev/null
  printf '%-6s %14s %14s %8s\n' round "$a_name" "$b_name" ratio
  for r in $(seq 1 "$rounds"); do
    b=$(load "$b_url")
    a=$(load "$a_url")
    ratios+=("$(ratio "$a" "$b")")
    printf '%-6d %14s %14s %8s\n' "$r" "$a" "$b" "${ratios[-1]}"
  done
  echo "median ratio $a_name ÷ $b_name: $(median "${ratios[@]}")"
}

if want 1; then
  echo "== 1. GET /api/v1/contracts?limit=20 (100 of 10,000 contracts, $db) against the same SELECT"
  compare palisade "http://$palisade/api/v1/contracts?limit=20" baseline "http://$baseline/contracts"
  echo
fi
if want 2; then
  echo "== 2. cached GET /api/v1/dashboard against GET /api/v1/me ($db)"
  x=$(curl -s -o /dev/null -D - -H "Authorization: Bearer $access" "http://$palisade/api/v1/dashboard" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-cache" { print $2 }')
  echo "first read: X-Cache $x"
  compare dashboard "http://$palisade/api/v1/dashboard" me "http://$palisade/api/v1/me"
  echo
fi
want 3 || exit 0

echo "== 3. CSV export of 200,000 contracts ($db) against the database's own CSV"
seed 190 1000 >/dev/null
columns="id, owner_id, title, counterparty, amount_cents, currency, status, starts_on, ends_on, description, tags, version, created_at, updated_at"
query="SELECT $columns FROM contracts ORDER BY id DESC"
dump() {
  if [ "$db" = postgres ]; then
    psql -q "$DATABASE_URL" -c "\\copy ($query) to stdout csv header"
  else
    # Ids are 16-byte BLOBs on SQLite: printed as hex, as palisade prints them as text.
    sqlite3 -csv -header "$work/bench.db" "${query/id, owner_id,/lower(hex(id)), lower(hex(owner_id)),}"
  fi
}
rows_of() { awk 'END { print NR - 1 }' "$1"; }
seconds_of() { python3 -c 'import sys,time,subprocess
t=time.perf_counter(); subprocess.run(sys.argv[1:], check=True); print(time.perf_counter()-t)' "$@"; }
export_csv() {
  curl -sf -H "Authorization: Bearer $boss" "http://$palisade/api/v1/exports/contracts" -o "$work/export.csv"
}
export -f dump export_csv
export db query work palisade boss
printf '%-6s %14s %14s %8s\n' round palisade_rows/s "$db"_rows/s ratio
ratios=()
for r in $(seq 1 "$rounds"); do
  t_tool=$(seconds_of bash -c 'dump > "$work/tool.csv"')
  t_pal=$(seconds_of bash -c export_csv)
  rows=$(rows_of "$work/export.csv")
  tool_rows=$(rows_of "$work/tool.csv")
  [ "$rows" = 200000 ] && [ "$tool_rows" = 200000 ] || { echo "exported $rows and $tool_rows rows, not 200000" >&2; exit 1; }
  p=$(awk -v n="$rows" -v t="$t_pal" 'BEGIN { printf "%.0f", n / t }')
  b=$(awk -v n="$tool_rows" -v t="$t_tool" 'BEGIN { printf "%.0f", n / t }')
  ratios+=("$(ratio "$p" "$b")")
  printf '%-6d %14s %14s %8s\n' "$r" "$p" "$b" "${ratios[-1]}"
done
echo "median ratio palisade ÷ $db: $(median "${ratios[@]}")"
rss_kib=$(awk '/VmHWM/ { print $2 }' "/proc/$(cat "$work/palisade/pid")/status")
awk -v rss="$rss_kib" 'BEGIN { printf "peak RSS of the server: %.1f MiB\n", rss / 1024 }'
