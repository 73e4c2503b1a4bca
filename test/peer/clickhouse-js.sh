#!/usr/bin/env bash
# Peer check of the ClickHouse front: runs the official client's own integration suites
# (ClickHouse/clickhouse-js, packages/client-node + client-common integration folders) against
# a running front, and prints passed/failed/skipped with the failures grouped by reason.
# Fetches nothing: the checkout (at the pinned commit, `npm ci` done) is the caller's.
#
#   test/peer/clickhouse-js.sh <clickhouse-js checkout> <front URL> [vitest args...]
#   e.g. test/peer/clickhouse-js.sh /tmp/peer/clickhouse-js http://127.0.0.1:28123
#
# The suite's hard-coded addresses (http://127.0.0.1:8123 in its test client factory, the
# client's default http://localhost:8123) are pointed at the front by rewriting those two
# files from the checkout's own HEAD; nothing else in the checkout changes.
# CF_PEER_COMMIT overrides the pinned commit.
set -euo pipefail

pinned=${CF_PEER_COMMIT:-847809e6}
checkout=${1:?usage: clickhouse-js.sh <clickhouse-js checkout> <front URL> [vitest args...]}
front=${2:?usage: clickhouse-js.sh <clickhouse-js checkout> <front URL> [vitest args...]}
shift 2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
checkout=$(cd "$checkout" && pwd)
front=${front%/}

die() { echo "clickhouse-js.sh: $*" >&2; exit 2; }
head=$(git -C "$checkout" rev-parse HEAD) || die "$checkout is not a git checkout"
[[ $head == "$pinned"* ]] || die "$checkout is at ${head:0:12}, not the pinned $pinned (git -C $checkout checkout $pinned)"
[ -d "$checkout/node_modules/vitest" ] || die "no node_modules in $checkout: run npm ci there first"
curl -fsS "$front/ping" >/dev/null || die "no ClickHouse front answers at $front/ping"

# The suite's test client factory and the client's own default URL (used by the tests that
# create a client without one) both name ClickHouse's default address.
patch_address() { # <file> <address in it>
  git -C "$checkout" show "HEAD:$1" | sed "s#\"$2\"#\"$front\"#" >"$checkout/$1"
  grep -q "\"$front\"" "$checkout/$1" || die "the address patch did not apply to $1"
}
patch_address packages/client-common/__tests__/utils/client.ts http://127.0.0.1:8123
patch_address packages/client-common/src/config.ts http://localhost:8123

report=$(mktemp -t clickhouse-js-peer.XXXXXX.json)
trap 'rm -f "$report"' EXIT
echo "clickhouse-js ${head:0:12}: node + common integration suites against $front" >&2
(
  cd "$checkout/packages/client-node"
  TEST_MODE=integration npx vitest run --reporter=dot --reporter=json --outputFile="$report" "$@" >&2
) || true
node "$here/summarise.ts" "$report"
