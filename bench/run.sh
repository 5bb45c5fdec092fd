#!/usr/bin/env bash
# Throughput and latency of GET /health: palisade (every layer on) against a bare axum
# server (bench/baseline), loaded in the same run by the same wrk, in alternating rounds.
# Prints requests/s and p50/p99 per round, and the median ratio palisade ÷ baseline.
# A second baseline sends palisade's response headers too (same bytes on the wire, still
# no middleware): the ratio against it is the cost of the layers alone, since wrk, on the
# same cores, pays for parsing larger responses.
#
# Usage: bench/run.sh [rounds=3] [seconds=10] [connections=32]
# Needs: wrk (Debian package `wrk`). Targets 127.0.0.1 only; every run is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/lib.sh

palisade=$(start palisade "$palisade_bin" serve)
baseline=$(start baseline "$baseline_bin")
same=$(BASELINE_HEADERS=palisade start same-bytes "$baseline_bin")

# load ADDR → "rps p50_ms p99_ms"
load() {
  wrk -t1 -c"$conns" -d"${seconds}s" --latency "http://$1/health" | awk '
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    END { printf "%.0f %.3f %.3f\n", rps, ms(p50), ms(p99) }'
}

# Warm both up so neither pays for first-connection costs in a measured round.
wrk -t1 -c"$conns" -d2s "http://$palisade/health" >/dev/null
wrk -t1 -c"$conns" -d2s "http://$baseline/health" >/dev/null
wrk -t1 -c"$conns" -d2s "http://$same/health" >/dev/null

ratio() { awk -v p="$1" -v b="$2" 'BEGIN { printf "%.3f", p / b }'; }

printf '%-6s %-10s %10s %9s %9s\n' round server req/s p50_ms p99_ms
ratios=()
same_ratios=()
for r in $(seq 1 "$rounds"); do
  read -r b_rps b_p50 b_p99 < <(load "$baseline")
  read -r s_rps s_p50 s_p99 < <(load "$same")
  read -r p_rps p_p50 p_p99 < <(load "$palisade")
  printf '%-6s %-10s %10s %9s %9s\n' "$r" baseline "$b_rps" "$b_p50" "$b_p99"
  printf '%-6s %-10s %10s %9s %9s\n' "$r" same-bytes "$s_rps" "$s_p50" "$s_p99"
  printf '%-6s %-10s %10s %9s %9s\n' "$r" palisade "$p_rps" "$p_p50" "$p_p99"
  ratios+=("$(ratio "$p_rps" "$b_rps")")
  same_ratios+=("$(ratio "$p_rps" "$s_rps")")
done
echo "palisade / baseline   (req/s): ${ratios[*]}  median $(median "${ratios[@]}")  (target >= 0.80)"
echo "palisade / same-bytes (req/s): ${same_ratios[*]}  median $(median "${same_ratios[@]}")"
