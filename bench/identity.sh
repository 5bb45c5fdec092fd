#!/usr/bin/env bash
# Identity benchmarks, each against a limit measured in the same run:
#
# 1. Logins per second (POST /api/v1/auth/login, 8 connections, 10 s) against the
#    argon2id limit: cores ÷ the time of one hash with palisade's parameters, measured
#    (median of 20) just before and just after each round's load and averaged, so a
#    neighbour's load on this shared machine weighs on both sides. Median over rounds;
#    peak RSS of the server over all rounds.
# 2. Authenticated GET /api/v1/me against the bare baseline server's GET /me, which
#    verifies the same JWT with the same verifier and returns a fixed user; alternating
#    rounds, median ratio.
# 3. GET /api/v1/me while logins (of another user) keep every hashing thread busy,
#    against /me alone (part 2's rounds): whether a login storm starves other requests.
#
# Rate limits stay on (the limiter runs) with quotas too large to refuse, so its cost
# is measured without 429s. Targets 127.0.0.1 only; every run is bounded.
#
# Usage: bench/identity.sh [rounds=3] [seconds=10] [connections=32]
# Needs: wrk (Debian package `wrk`), curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/lib.sh

export PALISADE_DATA_DIR="$work/data"
export PALISADE_RATE_LIMIT_AUTH=1000000000/1s PALISADE_RATE_LIMIT_GENERAL=1000000000/1s
palisade=$(start palisade "$palisade_bin" serve)
baseline=$(BASELINE_JWT_KEY_FILE="$work/data/jwt-ed25519.pem" start baseline "$baseline_bin")

password='a long benchmark passphrase 4711'
# register EMAIL: an account with $password.
register() {
  curl -sf -o /dev/null -X POST "http://$palisade/api/v1/auth/register" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"$password\",\"name\":\"Bench\"}"
}
email=bench@example.com
register "$email"

# ---- 1. logins against the argon2id limit ------------------------------------------
cores=$(nproc)
cat >"$work/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"$email","password":"$password"}'
LUA
wrk -t1 -c8 -d2s -s "$work/login.lua" "http://$palisade/api/v1/auth/login" >/dev/null
printf '%-6s %10s %10s %10s %8s\n' round "hash ms" logins/s limit/s ratio
login_ratios=()
for r in $(seq 1 "$rounds"); do
  before=$("$baseline_bin" argon2 20)
  out=$(wrk -t1 -c8 -d"${seconds}s" -s "$work/login.lua" "http://$palisade/api/v1/auth/login")
  after=$("$baseline_bin" argon2 20)
  rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
  bad=$(awk '/Non-2xx/ { print $5 }' <<<"$out")
  [ -z "$bad" ] || { echo "round $r: $bad logins answered non-2xx" >&2; exit 1; }
  line=$(awk -v c="$cores" -v b="$before" -v a="$after" -v r="$rps" -v n="$r" 'BEGIN {
    t = (b + a) / 2; printf "%-6d %10.1f %10.1f %10.1f %8.3f", n, t * 1000, r, c / t, r / (c / t) }')
  echo "$line"
  login_ratios+=("$(awk '{ print $5 }' <<<"$line")")
done
rss_kib=$(awk '/VmHWM/ { print $2 }' "/proc/$(cat "$work/palisade/pid")/status")
echo "median login ratio (logins ÷ cores/hash-time, $cores cores): $(median "${login_ratios[@]}")"
awk -v rss="$rss_kib" 'BEGIN { printf "peak RSS of the server: %.1f MiB\n", rss / 1024 }'

# ---- 2. GET /api/v1/me against the baseline's JWT-verifying /me --------------------
# Logged in after the login load: that load's sessions ended every earlier one (at most
# 10 per user).
access=$(curl -sf -X POST "http://$palisade/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"email\":\"$email\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $access" "http://$palisade/api/v1/me")
[ "$code" = 200 ] || { echo "GET /api/v1/me answered $code, not 200" >&2; exit 1; }
wrk -t1 -c"$conns" -d2s -H "Authorization: Bearer $access" "http://$baseline/me" >/dev/null
wrk -t1 -c"$conns" -d2s -H "Authorization: Bearer $access" "http://$palisade/api/v1/me" >/dev/null
ratios=()
alone=()
printf '%-6s %12s %12s %8s\n' round baseline/me palisade/me ratio
for r in $(seq 1 "$rounds"); do
  b=$(load "http://$baseline/me")
  p=$(load "http://$palisade/api/v1/me")
  alone+=("$p")
  ratio=$(awk -v p="$p" -v b="$b" 'BEGIN { printf "%.3f", p / b }')
  ratios+=("$ratio")
  printf '%-6s %12s %12s %8s\n' "$r" "$b" "$p" "$ratio"
done
echo "median /me ratio (palisade ÷ baseline): $(median "${ratios[@]}")"

# ---- 3. GET /api/v1/me during a login storm -----------------------------------------
# The storm signs in another user: its sessions must not end the one /me uses.
storm_email=storm@example.com
register "$storm_email"
sed "s/$email/$storm_email/" "$work/login.lua" >"$work/storm.lua"
during=()
printf '%-6s %12s %12s %8s\n' round logins/s me/s "÷ alone"
for r in $(seq 1 "$rounds"); do
  wrk -t1 -c8 -d"${seconds}s" -s "$work/storm.lua" "http://$palisade/api/v1/auth/login" >"$work/storm.out" &
  storm=$!
  p=$(load "http://$palisade/api/v1/me")
  wait "$storm"
  logins=$(awk '/Requests\/sec/ { print $2 }' "$work/storm.out")
  ratio=$(awk -v p="$p" -v a="${alone[$((r - 1))]}" 'BEGIN { printf "%.3f", p / a }')
  during+=("$ratio")
  printf '%-6s %12s %12s %8s\n' "$r" "$logins" "$p" "$ratio"
done
echo "median /me during a login storm ÷ /me alone: $(median "${during[@]}")"
