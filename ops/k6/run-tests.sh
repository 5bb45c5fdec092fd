#!/usr/bin/env bash
# Runs ops/k6/multi_scenarios.js under a profile, as `palisade loadtest --profile` does:
#   ops/k6/run-tests.sh [smoke|load|stress|spike] [BASE_URL] [SCALE]
# Writes the summary (k6's JSON) and exits with k6's code: 99 when a threshold failed.
set -euo pipefail
profile=${1:-smoke}
base_url=${2:-http://127.0.0.1:3000}
scale=${3:-1}
case "$profile" in
  smoke | load | stress | spike) ;;
  *) echo "usage: $0 [smoke|load|stress|spike] [BASE_URL] [SCALE]" >&2; exit 2 ;;
esac
command -v k6 >/dev/null || { echo "k6 is not installed: https://grafana.com/docs/k6/latest/set-up/install-k6/" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
exec k6 run \
  -e BASE_URL="$base_url" -e PROFILE="$profile" -e SCALE="$scale" \
  --summary-export "k6-summary-$profile.json" \
  "$here/multi_scenarios.js"
