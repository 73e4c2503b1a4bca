#!/usr/bin/env bash
# Run the benchmarks (test/bench/*.bench.ts, or the ones named) one after another against the
# local stack (started if needed). Each prints its figures and its same-run baseline.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
cf_ensure_deps
cd "$CF_ROOT"
bash "$here/up" >/dev/null
eval "$(bash "$here/status" --env | sed 's/^/export /')"
export KAFKAJS_NO_PARTITIONER_WARNING=1
benches=("$@")
[ ${#benches[@]} -gt 0 ] || benches=(test/bench/*.bench.ts)
for b in "${benches[@]}"; do
  echo "== $b"
  node "$b"
done
