#!/usr/bin/env bash
# `palisade migrate lint` against squawk (PyPI squawk-cli 2.70.0) on the same corpus of
# real-world PostgreSQL migrations (scripts/lint-corpus.sh: four projects, 378
# statements), both as whole processes, one per project, as CI runs them. Rounds
# alternate the two tools; prints each round's time, the medians, the time per
# statement and palisade ÷ squawk (target: ≤ 1, at least as fast).
#
# Usage: bench/lint.sh [rounds=11]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-11}

tools=/var/tmp/palisade-tools
venv=$tools/squawk-venv
if ! "$venv/bin/squawk" --version 2>/dev/null | grep -q '2\.70\.0'; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check squawk-cli==2.70.0
fi
cargo build --release -q -p palisade
target=${CARGO_TARGET_DIR:-target}
palisade=$(realpath "$target/release/palisade")
corpus=$(scripts/lint-corpus.sh)
projects=(apalis graphile-worker procrastinate sqlxmq)
statements=378

now() { date +%s%N; }
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Each tool lints each project in a process of its own; findings make both exit 1.
run_squawk() {
  for p in "${projects[@]}"; do "$venv/bin/squawk" "$corpus/$p"/*.up.sql >/dev/null 2>&1 || true; done
}
run_palisade() {
  for p in "${projects[@]}"; do
    "$palisade" migrate --database-url sqlite::memory: --dir "$corpus/$p" lint --dialect postgres \
      --format json >/dev/null 2>&1 || true
  done
}

# One warm-up of each (page cache, the venv's first import).
run_squawk
run_palisade
squawk_ms=()
palisade_ms=()
for r in $(seq 1 "$rounds"); do
  t0=$(now); run_squawk; t1=$(now); run_palisade; t2=$(now)
  squawk_ms+=("$(( (t1 - t0) / 1000000 ))")
  palisade_ms+=("$(( (t2 - t1) / 1000000 ))")
  printf 'round %2d: squawk %5d ms, palisade %5d ms\n' "$r" "${squawk_ms[-1]}" "${palisade_ms[-1]}"
done
s=$(median "${squawk_ms[@]}")
p=$(median "${palisade_ms[@]}")
awk -v s="$s" -v p="$p" -v n="$statements" -v r="$rounds" 'BEGIN {
  printf "median of %d rounds, 4 processes each, %d statements:\n", r, n
  printf "  squawk   %7.1f ms  (%6.1f us per statement)\n", s, s * 1000 / n
  printf "  palisade %7.1f ms  (%6.1f us per statement)\n", p, p * 1000 / n
  printf "  palisade / squawk = %.2f (target <= 1)\n", p / s
}'
