#!/usr/bin/env bash
# The local stack's ClickHouse: our HTTP front (services/chdb-server) over the npm chdb
# engine on $CF_CLICKHOUSE_PORT, data under $CF_STATE/data/clickhouse.
# Subcommands: fetch | start | stop | status | env.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

NAME=clickhouse
PORT=$CF_CLICKHOUSE_PORT
DIR="$CF_DATA/clickhouse"
LOG="$CF_LOGS/$NAME.log"
URL="http://127.0.0.1:$PORT"

ping_ok() { curl -fsS --max-time 2 "$URL/ping" 2>/dev/null | grep -q '^Ok\.'; }

case "${1:-}" in
  fetch)
    # The engine is the npm package chdb (ClickHouse 26.x), installed with the project's
    # dependencies: nothing else to download.
    cf_ensure_deps
    ;;
  start)
    if cf_pid "$NAME" >/dev/null && ping_ok; then exit 0; fi
    if cf_pid "$NAME" >/dev/null; then
      # Ours but not answering (still starting, or wedged): give it the usual time.
      cf_wait "$NAME" 60 ping_ok
      exit 0
    fi
    cf_require_free_port "$NAME" "$PORT"
    cf_ensure_node
    mkdir -p "$DIR"
    cf_spawn "$NAME" "$LOG" env CF_CLICKHOUSE_PORT="$PORT" CF_CLICKHOUSE_DATA_DIR="$DIR" \
      node "$CF_ROOT/services/chdb-server/src/main.ts"
    cf_wait "$NAME" 60 ping_ok
    ;;
  stop) cf_stop "$NAME" 30 ;;
  status) cf_status "$NAME" "$URL" ping_ok ;;
  env) echo "CLICKHOUSE_URL=$URL" ;;
  *) cf_die "usage: $0 fetch|start|stop|status|env" ;;
esac
