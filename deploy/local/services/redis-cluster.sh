#!/usr/bin/env bash
# A Redis Cluster of 3 masters and 3 replicas from Debian's redis-server, on ports
# $CF_REDIS_CLUSTER_PORT .. +5 (default 17100..17105; each node's cluster bus on port + 10000),
# AOF on (appendfsync everysec), data under $CF_STATE/data/redis-cluster/<port> (AOF and
# nodes.conf), logs in $CF_STATE/logs/redis-cluster-<port>.log. deploy/local/up starts it when
# CF_REDIS_CLUSTER=1; tests and chaos drive it through this script:
#
#   fetch                 install redis-server when missing
#   start                 start every node not running; on first start make the cluster
#                         (redis-cli --cluster create … --cluster-replicas 1); wait until it is
#                         healthy. A healthy cluster is left as is.
#   stop                  stop every node (SIGTERM, SIGKILL after 30 s); no process left
#   status                the cluster, then one line per node: role, the master a replica
#                         follows, slots, used memory, resident memory. Exit 3 when not healthy
#   env                   REDIS_CLUSTER_NODES=127.0.0.1:17100,…
#   running               exit 0 when any node of ours runs
#   wait-healthy [S]      wait up to S seconds (default 60) until the cluster is healthy
#   kill-master PORT      SIGKILL the master on PORT (a crash); wait until one of its replicas
#                         has taken its slots over and the cluster is ok again; print which
#   restart-node PORT     stop the node on PORT if it runs, start it again from its nodes.conf
#                         and AOF; it rejoins by itself (a former master as a replica of the one
#                         promoted in its place); wait until the cluster is healthy
#   reshard FROM TO N     move N slots from the master on port FROM to the master on port TO
#                         (redis-cli --cluster reshard, keys move with their slots)
#
# Healthy: every node runs, answers cluster_state:ok with all 16384 slots assigned and ok, knows
# all six nodes, and every replica's link to its master is up (so `WAIT 1 <ms>` can be
# acknowledged). cluster-node-timeout is 5 s (CF_REDIS_CLUSTER_NODE_TIMEOUT_MS), not Redis's
# 15 s, so a killed master is replaced within seconds on this one machine.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

BASE=$CF_REDIS_CLUSTER_PORT
PORTS=()
for i in 0 1 2 3 4 5; do PORTS+=($((BASE + i))); done
NODE_TIMEOUT_MS=${CF_REDIS_CLUSTER_NODE_TIMEOUT_MS:-5000}
MAXMEMORY=${CF_REDIS_CLUSTER_MAXMEMORY:-512mb}
SLOTS=16384

name() { echo "redis-cluster-$1"; }
cli() { local port=$1; shift; redis-cli -h 127.0.0.1 -p "$port" "$@"; }
ping_ok() { cli "$1" ping 2>/dev/null | grep -q PONG; }
# info_field PORT SECTION FIELD: one field of INFO SECTION or CLUSTER INFO (SECTION=cluster-info).
info_field() {
  local out
  if [ "$2" = cluster-info ]; then out=$(cli "$1" cluster info 2>/dev/null) || return 1
  else out=$(cli "$1" info "$2" 2>/dev/null) || return 1; fi
  printf '%s\n' "$out" | tr -d '\r' | awk -F: -v k="$3" '$1 == k { print $2; found = 1 } END { exit !found }'
}
nodes_csv() { local IFS=, a=() p; for p in "${PORTS[@]}"; do a+=("127.0.0.1:$p"); done; echo "${a[*]}"; }
check_port_arg() {
  local p=${1:-} q
  for q in "${PORTS[@]}"; do [ "$p" = "$q" ] && return 0; done
  cf_die "redis-cluster: '$p' is not one of our nodes (${PORTS[0]}..${PORTS[5]})"
}

node_healthy() {
  local p=$1 info repl
  cf_pid "$(name "$p")" >/dev/null || return 1
  info=$(cli "$p" cluster info 2>/dev/null | tr -d '\r') || return 1
  printf '%s\n' "$info" | awk -F: -v slots="$SLOTS" '
    { v[$1] = $2 }
    END { exit !(v["cluster_state"] == "ok" && v["cluster_slots_assigned"] == slots &&
                 v["cluster_slots_ok"] == slots && v["cluster_known_nodes"] == 6) }' || return 1
  repl=$(cli "$p" info replication 2>/dev/null | tr -d '\r') || return 1
  printf '%s\n' "$repl" | awk -F: '{ v[$1] = $2 } END { exit !(v["role"] == "master" || v["master_link_status"] == "up") }'
}
healthy() { local p; for p in "${PORTS[@]}"; do node_healthy "$p" || return 1; done; }
any_running() { local p; for p in "${PORTS[@]}"; do cf_pid "$(name "$p")" >/dev/null && return 0; done; return 1; }

wait_healthy() {
  local timeout=${1:-60} deadline p
  deadline=$((SECONDS + timeout))
  until healthy; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      for p in "${PORTS[@]}"; do
        node_healthy "$p" || cf_log "redis-cluster: node $p not healthy; $(cli "$p" cluster info 2>&1 | tr -d '\r' | grep -E 'cluster_state|slots_ok|known_nodes' | tr '\n' ' ')"
      done
      cf_die "redis-cluster: not healthy after ${timeout}s; read $CF_LOGS/redis-cluster-*.log"
    fi
    sleep 0.5
  done
}

require_free_ports() {
  cf_require_free_port "$(name "$1")" "$1"
  cf_require_free_port "$(name "$1") (cluster bus)" $(($1 + 10000))
}

start_node() {
  local p=$1 dir="$CF_DATA/redis-cluster/$1"
  cf_pid "$(name "$p")" >/dev/null && return 0
  require_free_ports "$p"
  mkdir -p "$dir"
  # As deploy/local/services/redis.sh: our pid (setsid, no daemonize), AOF everysec, rewrites
  # from 1 GB, no RDB snapshots. nodes.conf in the node's folder is its memory of the cluster.
  # A master has one replica: no 5 s wait for others before a full sync (diskless sync delay).
  cf_spawn "$(name "$p")" "$CF_LOGS/$(name "$p").log" redis-server --port "$p" --bind 127.0.0.1 \
    --dir "$dir" --daemonize no \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout "$NODE_TIMEOUT_MS" \
    --appendonly yes --appendfsync everysec --auto-aof-rewrite-min-size 1gb --save "" \
    --repl-diskless-sync-delay 0 \
    --maxmemory "$MAXMEMORY" --maxmemory-policy noeviction
}
wait_node_up() { cf_wait "$(name "$1")" 30 ping_ok "$1"; }

# A node that has never joined a cluster: it knows only itself and serves no slot.
fresh() {
  [ "$(info_field "$1" cluster-info cluster_known_nodes)" = 1 ] &&
    [ "$(info_field "$1" cluster-info cluster_slots_assigned)" = 0 ]
}

start() {
  if healthy; then return 0; fi
  local t0=$SECONDS p
  # Every port checked before any node starts, so a taken port leaves nothing half started.
  for p in "${PORTS[@]}"; do cf_pid "$(name "$p")" >/dev/null || require_free_ports "$p"; done
  for p in "${PORTS[@]}"; do start_node "$p"; done
  for p in "${PORTS[@]}"; do wait_node_up "$p"; done
  local fresh_nodes=()
  for p in "${PORTS[@]}"; do fresh "$p" && fresh_nodes+=("$p"); done
  if [ ${#fresh_nodes[@]} -eq 6 ]; then
    local addrs=()
    for p in "${PORTS[@]}"; do addrs+=("127.0.0.1:$p"); done
    # The first three become masters, the last three their replicas (redis-cli's choice on one
    # host; it warns that replicas share the masters' host, which is the point of a local stack).
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes \
      >>"$CF_LOGS/redis-cluster-create.log" 2>&1 ||
      cf_die "redis-cluster: redis-cli --cluster create failed; read $CF_LOGS/redis-cluster-create.log"
  elif [ ${#fresh_nodes[@]} -gt 0 ]; then
    cf_die "redis-cluster: node(s) ${fresh_nodes[*]} have no cluster state while the others have one (a data folder removed?). Stop the cluster and remove $CF_DATA/redis-cluster to make a new one."
  fi
  wait_healthy 60
  cf_log "redis-cluster: healthy in $((SECONDS - t0))s ($(nodes_csv))"
}

stop() {
  local p pid pids=()
  # SIGTERM to all at once, so no replica sees its master gone long enough to fail over.
  for p in "${PORTS[@]}"; do
    if pid=$(cf_pid "$(name "$p")"); then kill -TERM "$pid" 2>/dev/null || true; pids+=("$pid"); fi
  done
  for p in "${PORTS[@]}"; do cf_stop "$(name "$p")" 30; done
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null && cf_die "redis-cluster: pid $pid still runs after stop"
  done
  return 0
}

# The node's own line of CLUSTER NODES and the id → port map of the same answer, as
# "role master_port slots" (master_port "-" for a master, slots "-" for a replica).
node_view() {
  cli "$1" cluster nodes 2>/dev/null | tr -d '\r' | awk '
    { split($2, a, "[:@]"); port[$1] = a[2] }
    $3 ~ /myself/ {
      role = ($3 ~ /master/) ? "master" : "replica"; master = $4; n = 0; ranges = ""
      for (i = 9; i <= NF; i++) {
        if ($i ~ /^\[/) continue
        split($i, r, "-"); n += (r[2] == "" ? 1 : r[2] - r[1] + 1)
        ranges = ranges (ranges == "" ? "" : ",") $i
      }
    }
    END {
      if (role == "") exit 1
      if (role == "master") print role, "-", (n ? ranges " (" n ")" : "none")
      else print role, (master in port ? port[master] : master), "-"
    }'
}
role_of() { local v; v=$(node_view "$1") || return 1; echo "${v%% *}"; }

status() {
  local p rss=0 masters=0 replicas=0 lines=() v role master slots used node_rss link
  for p in "${PORTS[@]}"; do
    node_rss=$(cf_rss_kib "$(name "$p")"); rss=$((rss + node_rss))
    if cf_pid "$(name "$p")" >/dev/null && v=$(node_view "$p"); then
      read -r role master slots <<<"$v"
      used=$(info_field "$p" memory used_memory_human || echo "?")
      if [ "$role" = master ]; then
        masters=$((masters + 1))
        lines+=("$(printf '  %-6s %-8s %-26s used=%-8s rss=%sMiB' "$p" master "slots $slots" "$used" $((node_rss / 1024)))")
      else
        replicas=$((replicas + 1))
        link=$(info_field "$p" replication master_link_status || echo "?")
        lines+=("$(printf '  %-6s %-8s %-26s used=%-8s rss=%sMiB' "$p" replica "of $master (link $link)" "$used" $((node_rss / 1024)))")
      fi
    else
      lines+=("$(printf '  %-6s %-8s' "$p" down)")
    fi
  done
  local where="redis://127.0.0.1:${PORTS[0]}..${PORTS[5]}" state=running rc=0
  if ! healthy; then
    rc=3
    if any_running; then state=degraded; else state=stopped; fi
  fi
  printf '%-13s %-8s %-40s rss=%sMiB (%d masters, %d replicas)\n' redis-cluster "$state" "$where" $((rss / 1024)) "$masters" "$replicas"
  printf '%s\n' "${lines[@]}"
  return $rc
}

require_master() {
  check_port_arg "$1"
  cf_pid "$(name "$1")" >/dev/null || cf_die "redis-cluster: node $1 is not running"
  [ "$(role_of "$1")" = master ] ||
    cf_die "redis-cluster: node $1 is not a master (a replica of $(node_view "$1" | awk '{print $2}'))"
}

kill_master() {
  local p=$1 pid id replicas=() q t0
  require_master "$p"
  id=$(cli "$p" cluster myid | tr -d '\r')
  for q in "${PORTS[@]}"; do
    [ "$q" != "$p" ] && [ "$(node_view "$q" | awk '{print $2}')" = "$p" ] && replicas+=("$q")
  done
  [ ${#replicas[@]} -gt 0 ] || cf_die "redis-cluster: master $p has no replica to take over"
  pid=$(cf_pid "$(name "$p")")
  kill -KILL "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -f "$CF_RUN/$(name "$p").pid"
  t0=$SECONDS
  cf_log "redis-cluster: master $p (pid $pid, id $id) killed; waiting for ${replicas[*]} to take over"
  local deadline=$((SECONDS + NODE_TIMEOUT_MS / 1000 * 6 + 30)) promoted=""
  while [ -z "$promoted" ]; do
    for q in "${replicas[@]}"; do
      [ "$(role_of "$q" 2>/dev/null)" = master ] &&
        [ "$(info_field "$q" cluster-info cluster_state)" = ok ] && promoted=$q
    done
    [ -n "$promoted" ] && break
    [ "$SECONDS" -lt "$deadline" ] || cf_die "redis-cluster: no replica of $p promoted after $((SECONDS - t0))s"
    sleep 0.2
  done
  cf_log "redis-cluster: replica $promoted promoted to master after $((SECONDS - t0))s; cluster_state:ok"
}

restart_node() {
  local p=$1 t0=$SECONDS
  check_port_arg "$p"
  cf_stop "$(name "$p")" 30
  start_node "$p"
  wait_node_up "$p"
  wait_healthy 60
  cf_log "redis-cluster: node $p back after $((SECONDS - t0))s as $(node_view "$p" | awk '$1 == "replica" { print "replica of " $2; next } { print $1 }')"
}

reshard() {
  local from=$1 to=$2 n=$3
  require_master "$from"
  require_master "$to"
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || cf_die "redis-cluster: slot count '$n' is not a positive integer"
  local from_id to_id log="$CF_LOGS/redis-cluster-reshard.log"
  from_id=$(cli "$from" cluster myid | tr -d '\r')
  to_id=$(cli "$to" cluster myid | tr -d '\r')
  redis-cli --cluster reshard "127.0.0.1:$from" --cluster-from "$from_id" --cluster-to "$to_id" \
    --cluster-slots "$n" --cluster-yes >>"$log" 2>&1 ||
    cf_die "redis-cluster: reshard $from → $to failed; read $log"
  wait_healthy 60
  cf_log "redis-cluster: moved $n slots from $from to $to; now $from: $(node_view "$from" | cut -d' ' -f3-), $to: $(node_view "$to" | cut -d' ' -f3-)"
}

case "${1:-}" in
  fetch) cf_install_redis redis-cluster ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) echo "REDIS_CLUSTER_NODES=$(nodes_csv)" ;;
  running) any_running ;;
  wait-healthy) wait_healthy "${2:-60}" ;;
  kill-master) kill_master "${2:-}" ;;
  restart-node) restart_node "${2:-}" ;;
  reshard) [ $# -eq 4 ] || cf_die "usage: $0 reshard FROM_PORT TO_PORT SLOTS"; reshard "$2" "$3" "$4" ;;
  *) cf_die "usage: $0 fetch|start|stop|status|env|running|wait-healthy [S]|kill-master PORT|restart-node PORT|reshard FROM TO N" ;;
esac
