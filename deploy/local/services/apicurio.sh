#!/usr/bin/env bash
# Apicurio Registry $CF_APICURIO_VERSION from Maven Central (io.apicurio:apicurio-registry-app,
# classifier all, a tar.gz of the Quarkus fast-jar), on $CF_REGISTRY_PORT, Confluent-compatible API
# at /apis/ccompat/v7. Storage: H2 in a file under $CF_STATE/data/apicurio (survives a restart),
# global compatibility rule BACKWARD. Quarkus' management interface (health, metrics; build-time
# enabled, default 0.0.0.0:9000) moves to 127.0.0.1:$CF_REGISTRY_MANAGEMENT_PORT.
# Subcommands: fetch | start | stop | status | env | reset
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

NAME=apicurio
PORT=$CF_REGISTRY_PORT
VERSION=$CF_APICURIO_VERSION
HOME_DIR="$CF_CACHE/apicurio-$VERSION"
DIR="$CF_DATA/apicurio"
LOG="$CF_LOGS/$NAME.log"
JAVA="$CF_APICURIO_JAVA_HOME/bin/java"
HEAP=${CF_APICURIO_HEAP:-256m}
START_TIMEOUT_S=${CF_APICURIO_START_TIMEOUT_S:-120}
URL="http://127.0.0.1:$PORT/apis/ccompat/v7"

healthy() { cf_http_ok "$URL/subjects"; }

fetch() {
  [ -f "$HOME_DIR/.complete" ] && return 0
  command -v mvn >/dev/null || cf_die "apicurio: mvn is missing (apt-get install maven)"
  cf_log "apicurio: fetching io.apicurio:apicurio-registry-app:$VERSION:tar.gz:all from Maven Central"
  local tmp="$HOME_DIR.tmp.$$" flog="$CF_LOGS/apicurio-fetch.log"
  rm -rf "$tmp"
  mkdir -p "$tmp/dl"
  if ! mvn -q -B dependency:copy -Dartifact="io.apicurio:apicurio-registry-app:$VERSION:tar.gz:all" \
    -DoutputDirectory="$tmp/dl" >"$flog" 2>&1; then
    rm -rf "$tmp"
    tail -n 20 "$flog" >&2
    cf_die "apicurio: download of Apicurio Registry $VERSION failed; read $flog"
  fi
  tar -xzf "$tmp"/dl/*.tar.gz -C "$tmp" || cf_die "apicurio: could not extract the archive in $tmp/dl"
  rm -rf "$tmp/dl"
  [ -f "$tmp/quarkus-run.jar" ] || cf_die "apicurio: quarkus-run.jar missing from the archive"
  touch "$tmp/.complete"
  rm -rf "$HOME_DIR"
  mv "$tmp" "$HOME_DIR"
}

start() {
  if cf_pid "$NAME" >/dev/null && healthy; then return 0; fi
  if cf_pid "$NAME" >/dev/null; then
    # Ours and still starting (a concurrent start): wait for it rather than start a second one.
    cf_wait "$NAME" "$START_TIMEOUT_S" healthy
    return 0
  fi
  cf_require_free_port "$NAME" "$PORT"
  cf_require_free_port "$NAME management" "$CF_REGISTRY_MANAGEMENT_PORT"
  fetch
  [ -x "$JAVA" ] || cf_die "apicurio: no Java at $JAVA (set CF_APICURIO_JAVA_HOME to a Java 21+)"
  mkdir -p "$DIR/tmp"
  # Configuration as system properties: the names are those of Apicurio's application.properties.
  # The connection pool is cut from 20..100 to 2..10: one local user, and each idle H2 session costs heap.
  (cd "$DIR" && cf_spawn "$NAME" "$LOG" "$JAVA" -Xms64m -Xmx"$HEAP" -XX:+UseSerialGC \
    -XX:MaxMetaspaceSize=192m -XX:ReservedCodeCacheSize=64m -XX:TieredStopAtLevel=1 \
    -Djava.io.tmpdir="$DIR/tmp" -Dvertx.cacheDirBase="$DIR/tmp/vertx" \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$PORT" \
    -Dquarkus.management.host=127.0.0.1 -Dquarkus.management.port="$CF_REGISTRY_MANAGEMENT_PORT" \
    -Dapicurio.storage.kind=sql -Dapicurio.storage.sql.kind=h2 \
    -Dapicurio.datasource.url="jdbc:h2:file:$DIR/registry;DB_CLOSE_ON_EXIT=FALSE" \
    -Dapicurio.datasource.jdbc.initial-size=2 -Dapicurio.datasource.jdbc.min-size=2 \
    -Dapicurio.datasource.jdbc.max-size=10 \
    -Dapicurio.storage.snapshot.location="$DIR/tmp" -Dapicurio.import.work-dir="$DIR/tmp" \
    -Dapicurio.rules.global.compatibility=BACKWARD \
    -jar "$HOME_DIR/quarkus-run.jar")
  cf_wait "$NAME" "$START_TIMEOUT_S" healthy
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) cf_stop "$NAME" 30 ;;
  status) cf_status "$NAME" "$URL" healthy ;;
  env) echo "SCHEMA_REGISTRY_URL=$URL" ;;
  reset)
    cf_stop "$NAME" 30
    rm -rf "$DIR"
    cf_log "apicurio: data removed ($DIR)"
    ;;
  *) cf_die "usage: $0 fetch|start|stop|status|env|reset" ;;
esac
