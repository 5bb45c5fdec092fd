# Shared by the bench scripts (sourced from the repository root, with the script's
# arguments `[rounds=3] [seconds=10] [connections=32]`): the arguments, the release
# build of palisade and the baseline (`$palisade_bin`, `$baseline_bin`), a work
# directory removed on exit with every server started in it, `start NAME COMMAND…`
# (runs a server in its own directory, logging to a file, and prints its address once
# it listens), `load URL [WRK_ARGS…]` (requests/s of `wrk` with the bearer token
# `$access`), `median`, `bench_database` (sets `$db` and `DATABASE_URL`), `payer` (a
# member's access token) and `active_contract` (a contract to pay).

rounds=${1:-3}
seconds=${2:-10}
conns=${3:-32}

command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p palisade -p palisade-bench-baseline
target=${CARGO_TARGET_DIR:-target}
palisade_bin=$(realpath "$target/release/palisade")
baseline_bin=$(realpath "$target/release/palisade-bench-baseline")

work=$(mktemp -d)
# Each server's pid is kept in a file: `start` runs in a command substitution, whose
# variables do not reach this shell.
cleanup() {
  for f in "$work"/*/pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# start NAME COMMAND…: runs the server in its own directory, logging to a file (the access
# log is part of palisade's cost, as in production), and waits for its address.
start() {
  local name=$1; shift
  mkdir -p "$work/$name"
  (cd "$work/$name" && PORT=0 exec "$@" >"$work/$name/log" 2>&1) &
  echo $! >"$work/$name/pid"
  for _ in $(seq 1 100); do
    addr=$(grep -ao '"addr":"[^"]*"' "$work/$name/log" | head -1 | cut -d'"' -f4 || true)
    [ -n "$addr" ] && { echo "$addr"; return; }
    sleep 0.1
  done
  echo "$name did not start" >&2; cat "$work/$name/log" >&2; exit 1
}

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# load URL [WRK_ARGS…] → requests/s of wrk on URL with the bearer token $access (and
# WRK_ARGS, a script say). Errors are reported; more than 0.1 % would measure the
# error path, not the endpoint.
load() {
  local out
  out=$(wrk -t1 -c"$conns" -d"${seconds}s" -H "Authorization: Bearer $access" "${@:2}" "$1")
  awk -v url="$1" '/Requests\/sec/ { rps = $2 } /requests in/ { n = $1 } /Non-2xx/ { bad = $5 }
    END { if (bad > 0) printf "%s: %d non-2xx of %d\n", url, bad, n > "/dev/stderr"
          if (bad > n / 1000) exit 1
          printf "%.0f\n", rps }' <<<"$out"
}

# bench_database: a migrated database of the run's own, SQLite in the work directory, or
# with BENCH_DB=postgres one on the local PostgreSQL (BENCH_PG, default
# postgres://postgres@127.0.0.1:5432), dropped at exit. Sets $db and DATABASE_URL.
bench_database() {
  db=${BENCH_DB:-sqlite}
  export PALISADE_DATA_DIR="$work/data"
  if [ "$db" = postgres ]; then
    pg=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
    name="palisade_bench_$$"
    psql -q "$pg/postgres" -c "CREATE DATABASE $name"
    trap 'cleanup; psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $name WITH (FORCE)"' EXIT
    export DATABASE_URL="$pg/$name"
  else
    export DATABASE_URL="sqlite://$work/bench.db"
  fi
  "$palisade_bin" migrate up >/dev/null
}

# payer SERVER → creates the member payer@example.com with the CLI (on $DATABASE_URL)
# and prints their access token from SERVER.
payer() {
  printf 'a long benchmark passphrase 4711\n' |
    "$palisade_bin" user create --email payer@example.com --role member >/dev/null
  curl -sf -X POST "http://$1/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"email":"payer@example.com","password":"a long benchmark passphrase 4711"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

# active_contract SERVER TOKEN → the id of a new active contract of 10^12 cents.
active_contract() {
  local id
  id=$(curl -sf -X POST "http://$1/api/v1/contracts" -H "Authorization: Bearer $2" \
    -H 'content-type: application/json' \
    -d '{"title":"Bench","counterparty":"Acme","amount":{"amount_cents":1000000000000,"currency":"EUR"}}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  curl -sf -o /dev/null -X PATCH "http://$1/api/v1/contracts/$id" -H "Authorization: Bearer $2" \
    -H 'content-type: application/json' -d '{"status":"active"}'
  echo "$id"
}
