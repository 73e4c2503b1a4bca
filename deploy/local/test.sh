#!/usr/bin/env bash
# The README's test command: Node 24 and npm dependencies if missing, static checks, unit
# tests, then the local stack (started if needed) and every integration and e2e test against
# it. Prints the time of each phase. A stack this script started is stopped again at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
cd "$CF_ROOT"

declare -a timings=()
phase() { # phase NAME CMD...: run a phase and record its duration
  local name=$1; shift
  local t0=$SECONDS
  cf_log "── $name"
  "$@"
  timings+=("$(printf '%-22s %4ds' "$name" $((SECONDS - t0)))")
}
report() {
  printf '\nphase timings:\n'
  for t in "${timings[@]}"; do printf '  %s\n' "$t"; done
  [ -n "${results:-}" ] && summary
}
trap report EXIT

phase "node+deps" cf_ensure_deps
phase "typecheck" npx tsc -p tsconfig.json
phase "lint" npx biome check .
results="$CF_STATE/results"
rm -rf "$results" && mkdir -p "$results"
vitest_run() { # vitest_run PROJECT: run one vitest project, keep its JSON results
  npx vitest run --project "$1" --reporter=default --reporter=json --outputFile.json="$results/$1.json"
}
summary() { # the closing line CI reads: totals over every vitest project that ran
  node -e '
    const fs = require("node:fs"); let p = 0, f = 0, s = 0;
    for (const file of fs.readdirSync(process.argv[1])) {
      const r = JSON.parse(fs.readFileSync(process.argv[1] + "/" + file, "utf8"));
      p += r.numPassedTests; f += r.numFailedTests; s += r.numPendingTests + r.numTodoTests;
    }
    console.log(`tests: ${p} passed, ${f} failed, ${s} skipped`);' "$results" 2>/dev/null || true
}

phase "unit tests" vitest_run unit

started_here=0
if ! bash "$here/status" >/dev/null 2>&1; then
  started_here=1
fi
stop_if_ours() { [ "$started_here" = 1 ] && [ -z "${CF_KEEP_STACK:-}" ] && bash "$here/down" || true; }
trap 'stop_if_ours; report' EXIT

phase "stack up" bash "$here/up"
phase "stack up again" bash "$here/up" # idempotent: must be quick and change nothing
phase "integration tests" vitest_run integration
# The Redis Cluster phase: 3 masters and 3 replicas (deploy/local/services/redis-cluster.sh).
# First the files that run on either Redis (test/support/stack.ts redisTarget) once more, on the
# cluster: the consumer's exactness, crashes and rebalances, zombie and sweeper, the API, the
# rebuild, the balance page. Then, by themselves, the cluster's own tests: the stack's cluster, and
# the consumer through a master SIGKILLed and a reshard under load (until a replica takes over, the
# killed master's slots answer nothing, which the other files do not expect), the sharded sweep, a
# migrating slot. A cluster this script started is stopped again.
cluster_tests() {
  local cluster="$here/services/redis-cluster.sh" started_cluster=0
  bash "$cluster" running >/dev/null 2>&1 || started_cluster=1
  CF_REDIS_CLUSTER=1 bash "$here/up"
  local nodes
  nodes=$(bash "$cluster" env | sed -n 's/^REDIS_CLUSTER_NODES=//p')
  local rc=0
  REDIS_CLUSTER_NODES=$nodes npx vitest run --project integration \
    test/integration/consumer.test.ts test/integration/consumer-crash.test.ts \
    test/integration/consumer-zombie.test.ts test/integration/consumer-sweeper.test.ts \
    test/integration/api.test.ts test/integration/api-consumer.test.ts \
    test/integration/rebuild.test.ts test/e2e/balance-page.test.ts \
    --reporter=default --reporter=json --outputFile.json="$results/cluster-either.json" || rc=$?
  REDIS_CLUSTER_NODES=$nodes npx vitest run --project integration \
    test/integration/consumer-cluster.test.ts test/integration/redis-cluster-stack.test.ts \
    --reporter=default --reporter=json --outputFile.json="$results/cluster.json" || rc=$?
  [ "$started_cluster" = 1 ] && [ -z "${CF_KEEP_STACK:-}" ] && bash "$here/down" redis-cluster
  return $rc
}
phase "redis cluster tests" cluster_tests
phase "chaos run (2 min)" vitest_run chaos # own 3-broker stack on other ports (test/chaos)
