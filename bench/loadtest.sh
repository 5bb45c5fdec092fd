#!/usr/bin/env bash
# `palisade loadtest` against wrk on the same server in the same run: GET /health with
# 50 connections (wrk -c50) and 50 VUs (constant-vus), alternating rounds. Prints
# requests/s and p50 per round and the medians of runner ÷ wrk (targets: requests/s
# ≥ 0.8, p50 within 25 %). Then Artillery's smoke scenario (ops/artillery/smoke.yml)
# against the same palisade.
#
# Usage: bench/loadtest.sh [rounds=3] [seconds=10]
# Needs: wrk, npm (Artillery 2.0.21 is installed under /var/tmp/palisade-tools).
# Targets 127.0.0.1 only; every run is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

conns=50
. bench/lib.sh

bench_database
export PALISADE_RATE_LIMIT_ALLOW=127.0.0.1/32 PALISADE_MAX_CONNECTIONS_PER_CLIENT=1024
export PALISADE_BILLING_PLANS='[{"id":"free","name":"Free","features":["exports"],"limits":{}}]'
palisade=$(start palisade "$palisade_bin" serve)

cat >"$work/health.toml" <<TOML
[scenarios.health]
executor = "constant-vus"
vus = $conns
duration = "${seconds}s"
steps = [{ path = "/health" }]
TOML

# wrk_round → "rps p50_ms"
wrk_round() {
  wrk -t1 -c"$conns" -d"${seconds}s" --latency "http://$palisade/health" | awk '
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = $2 }
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    END { printf "%.0f %.3f\n", rps, ms(p50) }'
}

# runner_round → "rps p50_ms", from the summary export
runner_round() {
  "$palisade_bin" loadtest "$work/health.toml" --base-url "http://$palisade" --quiet \
    --summary-export "$work/summary.json" >/dev/null
  python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
print("%.0f %.3f" % (m["http_reqs"]["values"]["rate"], m["http_req_duration"]["values"]["med"]))' "$work/summary.json"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

wrk -t1 -c"$conns" -d2s "http://$palisade/health" >/dev/null
printf '%-6s %-9s %10s %9s\n' round client req/s p50_ms
rps_ratios=()
p50_ratios=()
for r in $(seq 1 "$rounds"); do
  read -r w_rps w_p50 < <(wrk_round)
  read -r l_rps l_p50 < <(runner_round)
  printf '%-6s %-9s %10s %9s\n' "$r" wrk "$w_rps" "$w_p50"
  printf '%-6s %-9s %10s %9s\n' "$r" loadtest "$l_rps" "$l_p50"
  rps_ratios+=("$(ratio "$l_rps" "$w_rps")")
  p50_ratios+=("$(ratio "$l_p50" "$w_p50")")
done
echo "loadtest / wrk (req/s): ${rps_ratios[*]}  median $(median "${rps_ratios[@]}")  (target >= 0.80)"
echo "loadtest / wrk (p50):   ${p50_ratios[*]}  median $(median "${p50_ratios[@]}")  (target 0.75..1.25)"

# Artillery's smoke scenario, pinned, installed outside the repository.
tools=/var/tmp/palisade-tools
if [ ! -x "$tools/artillery/node_modules/.bin/artillery" ]; then
  mkdir -p "$tools/artillery"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$tools/artillery" --no-audit --no-fund --silent \
    --ignore-scripts artillery@2.0.21
fi
echo
echo "artillery run ops/artillery/smoke.yml"
if ARTILLERY_DISABLE_TELEMETRY=true "$tools/artillery/node_modules/.bin/artillery" run --target "http://$palisade" \
  --output "$work/artillery.json" ops/artillery/smoke.yml >"$work/artillery.log" 2>&1; then
  verdict="passed its ensure checks"
else
  verdict="FAILED (exit $?)"
fi
sed -n '/Summary report/,$p' "$work/artillery.log" | grep -E 'http\.(codes|requests|response_time|request_rate)|vusers\.(completed|failed)|errors\.|min:|median:|p95:|p99:|ensure|ok:|fail' || tail -40 "$work/artillery.log"
echo "artillery smoke: $verdict"
