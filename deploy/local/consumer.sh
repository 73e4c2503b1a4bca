#!/usr/bin/env bash
# Run deduction consumer processes against the local stack (they share one consumer group).
#   deploy/local/consumer.sh start [N]   start N processes (default 1), logs in $CF_STATE/consumer
#   deploy/local/consumer.sh stop        SIGTERM each (finishes the unit in hand, commits)
#   deploy/local/consumer.sh status      pid and /healthz of each
# Environment as services/consumer/README.md (CF_TOPIC_PREFIX, CF_KEY_PREFIX, ...); process i
# serves /metrics on CF_CONSUMER_METRICS_BASE_PORT+i (default 19400+i).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cf_ensure_node
dir="$CF_STATE/consumer"
mkdir -p "$dir"
base=${CF_CONSUMER_METRICS_BASE_PORT:-19400}

case "${1:-status}" in
  start)
    n=${2:-1}
    for ((i = 0; i < n; i++)); do
      if [ -f "$dir/$i.pid" ] && kill -0 "$(cat "$dir/$i.pid")" 2>/dev/null; then
        cf_log "consumer $i already running (pid $(cat "$dir/$i.pid"))"
        continue
      fi
      CF_CONSUMER_METRICS_PORT=$((base + i)) \
        nohup node "$CF_ROOT/services/consumer/src/main.ts" >"$dir/$i.log" 2>&1 &
      echo $! >"$dir/$i.pid"
      cf_log "consumer $i started (pid $!, metrics :$((base + i)), log $dir/$i.log)"
    done
    ;;
  stop)
    for f in "$dir"/*.pid; do
      [ -e "$f" ] || continue
      pid=$(cat "$f")
      if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        cf_log "consumer pid $pid stopped"
      fi
      rm -f "$f"
    done
    ;;
  status)
    for f in "$dir"/*.pid; do
      [ -e "$f" ] || { cf_log "no consumer running"; exit 0; }
      i=$(basename "$f" .pid)
      pid=$(cat "$f")
      if kill -0 "$pid" 2>/dev/null; then
        health=$(curl -fsS "http://127.0.0.1:$((base + i))/healthz" 2>/dev/null || echo unreachable)
        echo "consumer $i  pid $pid  $health"
      else
        echo "consumer $i  not running (stale pid $pid)"
      fi
    done
    ;;
  *) cf_die "usage: consumer.sh start [N] | stop | status" ;;
esac
