# Sourced by deploy/local/services/*.sh: process and port helpers shared by every service
# script (start in the background with a pid file, wait for health, stop with no leftover).
# shellcheck source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

CF_RUN="$CF_STATE/run"   # pid files
CF_LOGS="$CF_STATE/logs" # one log per service process
CF_DATA="$CF_STATE/data" # one data folder per service
mkdir -p "$CF_RUN" "$CF_LOGS" "$CF_DATA"

# cf_port_busy PORT: true when something listens on 127.0.0.1:PORT.
cf_port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# cf_pid NAME: the pid of our running process NAME, or nothing.
cf_pid() {
  local f="$CF_RUN/$1.pid" pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; return 0; fi
  rm -f "$f"
  return 1
}

# cf_require_free_port NAME PORT: refuse to start when a foreign process holds our port.
cf_require_free_port() {
  if cf_port_busy "$2"; then
    cf_die "$1: port $2 is already taken by another process (not ours). Stop it, or set the port variable (see deploy/local/env.sh)."
  fi
}

# cf_spawn NAME LOG CMD...: start CMD detached in its own session, record its pid.
cf_spawn() {
  local name=$1 log=$2; shift 2
  setsid "$@" >>"$log" 2>&1 < /dev/null &
  echo $! > "$CF_RUN/$name.pid"
}

# cf_wait NAME TIMEOUT_S CHECK...: poll CHECK until it succeeds; fail with the log's tail.
cf_wait() {
  local name=$1 timeout=$2; shift 2
  local log="$CF_LOGS/$name.log" deadline=$((SECONDS + timeout))
  while ! "$@" >/dev/null 2>&1; do
    if ! cf_pid "$name" >/dev/null; then
      tail -n 30 "$log" >&2 2>/dev/null
      cf_die "$name exited during start-up; read $log"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 30 "$log" >&2 2>/dev/null
      cf_die "$name not healthy after ${timeout}s; read $log"
    fi
    sleep 0.5
  done
}

# cf_stop NAME [TIMEOUT_S]: SIGTERM the process group, SIGKILL after the timeout.
cf_stop() {
  local name=$1 timeout=${2:-30} pid
  pid=$(cf_pid "$name") || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
  local deadline=$((SECONDS + timeout))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
      break
    fi
    sleep 0.2
  done
  rm -f "$CF_RUN/$name.pid"
}

# cf_rss_kib NAME: resident memory of our process NAME and its children, in KiB.
cf_rss_kib() {
  local pid
  pid=$(cf_pid "$1") || { echo 0; return; }
  ps -o rss= --ppid "$pid" -p "$pid" 2>/dev/null | awk '{s+=$1} END {print s+0}'
}

# cf_http_ok URL: true when URL answers 2xx.
cf_http_ok() { curl -fsS -o /dev/null --max-time 2 "$1"; }

# cf_status NAME WHERE CHECK...: the status line of a one-process service: running (with its
# resident memory) when our process NAME is alive and CHECK succeeds; otherwise stopped, exit 3.
cf_status() {
  local name=$1 where=$2; shift 2
  if cf_pid "$name" >/dev/null && "$@"; then
    printf '%-11s %-8s %-40s rss=%sMiB\n' "$name" running "$where" $(( $(cf_rss_kib "$name") / 1024 ))
  else
    printf '%-11s %-8s %-40s\n' "$name" stopped "$where"
    exit 3
  fi
}

# cf_install_redis NAME: install Debian's redis-server (redis, redis-cluster) unless it is there.
cf_install_redis() {
  if ! command -v redis-server >/dev/null; then
    cf_log "installing Debian's redis-server"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; } >&2 \
      || cf_die "$1: apt-get install redis-server failed"
  fi
}
