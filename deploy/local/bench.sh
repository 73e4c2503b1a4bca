#!/usr/bin/env bash
# Run the benchmarks against the local stack (started if needed). Each prints its figures and its
# same-run baseline.
#
#   npm run bench                               every test/bench/*.bench.ts, one after another
#   npm run bench -- test/bench/consumer.bench.ts --pairs 3 --redis-cluster
#                                               the files named, with the flags after them
#   npm run bench -- --write                    every bench with the Redis Cluster started too,
#                                               their tables written to docs/BENCHMARKS.md
#
# A .ts argument names a bench file; any other argument is a flag passed to every bench run.
# --write replaces docs/BENCHMARKS.md with the tables of this one run (stdout of each bench; its
# progress lines go to stderr), headed by the machine and the command, so every figure in the
# page comes with its baseline from the same run. The consumer bench then runs with
# --redis-cluster (one Redis and the cluster side by side), which needs the local cluster.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
cf_ensure_deps
cd "$CF_ROOT"

benches=() flags=() write=0
for arg in "$@"; do
  case $arg in
    --write) write=1 ;;
    *.ts) benches+=("$arg") ;;
    *) flags+=("$arg") ;;
  esac
done
[ ${#benches[@]} -gt 0 ] || benches=(test/bench/*.bench.ts)

if [ "$write" = 1 ]; then CF_REDIS_CLUSTER=1 bash "$here/up" >/dev/null
else bash "$here/up" >/dev/null; fi
eval "$(bash "$here/status" --env | sed 's/^/export /')"
export KAFKAJS_NO_PARTITIONER_WARNING=1

# run_bench FILE: one bench, with the flags given (and --redis-cluster for the consumer when
# writing the page). Only the benches that measure the cluster see REDIS_CLUSTER_NODES: the
# services the others start (the API) would otherwise use the cluster, not the Redis they seeded.
run_bench() {
  local more=() env=(env -u REDIS_CLUSTER_NODES)
  case $(basename "$1") in
    consumer.bench.ts) env=(env); [ "$write" = 1 ] && more=(--redis-cluster) ;;
    replica-ack.bench.ts) env=(env) ;;
  esac
  "${env[@]}" node "$1" ${flags[@]+"${flags[@]}"} ${more[@]+"${more[@]}"}
}

if [ "$write" = 0 ]; then
  for b in "${benches[@]}"; do
    echo "== $b"
    run_bench "$b"
  done
  exit 0
fi

page=docs/BENCHMARKS.md
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
  echo "# Benchmarks"
  echo
  echo "Every figure below comes from one run of \`npm run bench -- --write\`, which wrote this page;"
  echo "each bench measures its baseline in the same run, so compare ratios within a table rather"
  echo "than figures across machines. What each bench does and its options: the comment at the top"
  echo "of its file under \`test/bench/\`."
  echo
  echo "Machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)),"
  echo "$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) of memory,"
  echo "$(. /etc/os-release && echo "$PRETTY_NAME"), Node $(node -p 'process.versions.node'); the local"
  echo "stack of \`./creditflow up\` with the Redis Cluster (\`CF_REDIS_CLUSTER=1\`)."
} >"$tmp"
for b in "${benches[@]}"; do
  cf_log "bench $b"
  {
    echo
    echo "## \`node $b${flags[*]+ ${flags[*]}}$([ "$(basename "$b")" = consumer.bench.ts ] && echo " --redis-cluster")\`"
    run_bench "$b"
  } >>"$tmp"
done
mv "$tmp" "$page"
trap - EXIT
cf_log "wrote $page"
