#!/usr/bin/env bash
# Our own Redis (Debian's redis-server) on $CF_REDIS_PORT with AOF everysec, data under
# $CF_STATE/data/redis. Subcommands: fetch | start | stop | status | env.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

NAME=redis
PORT=$CF_REDIS_PORT
DIR="$CF_DATA/redis"
LOG="$CF_LOGS/$NAME.log"
URL="redis://127.0.0.1:$PORT"

ping_ok() { redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG; }

case "${1:-}" in
  fetch) cf_install_redis "$NAME" ;;
  start)
    if cf_pid "$NAME" >/dev/null && ping_ok; then exit 0; fi
    cf_require_free_port "$NAME" "$PORT"
    mkdir -p "$DIR"
    # setsid + --daemonize no keeps the pid ours; appendfsync everysec: at most a second of
    # writes at risk on a machine crash, none on a process crash. AOF rewrites from 1 GB (not
    # Redis's 64 MB): a backlog of a million events rewrote the file 6-7 times (a fork and a
    # dump of the whole data set each, ~2 s of a core) while the consumer drained it.
    cf_spawn "$NAME" "$LOG" redis-server --port "$PORT" --bind 127.0.0.1 --dir "$DIR" \
      --appendonly yes --appendfsync everysec --auto-aof-rewrite-min-size 1gb --save "" \
      --daemonize no \
      --maxmemory "${CF_REDIS_MAXMEMORY:-1gb}" --maxmemory-policy noeviction
    cf_wait "$NAME" 30 ping_ok
    ;;
  stop) cf_stop "$NAME" 30 ;;
  status) cf_status "$NAME" "$URL" ping_ok ;;
  env) echo "REDIS_URL=$URL" ;;
  *) cf_die "usage: $0 fetch|start|stop|status|env" ;;
esac
