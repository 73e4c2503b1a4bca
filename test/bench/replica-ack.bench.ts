// What waiting for a replica costs the member writes: rounds of the consumer's CAS write
// (MemberStore.write, 250 members of realistic state size, one EVALSHA each) against the local
// Redis Cluster with minReplicaAcks 0 (no WAIT) and 1 (WAIT 1 on every master written, as the
// consumer does on a cluster), alternating, and against the single Redis as the baseline of one
// node. Prints ms per round (median, p90) and member writes per second for each.
//   REDIS_CLUSTER_NODES=127.0.0.1:17100,... node test/bench/replica-ack.bench.ts
// Env: REDIS_URL (default the local stack's), REDIS_CLUSTER_NODES (required), BENCH_ROUNDS
// (default 200 per case and pass), BENCH_PASSES (default 3). Keys are unique per run and removed.

import { randomBytes } from "node:crypto";
import {
  connectRedis,
  deleteKeysUnder,
  keySpace,
  MemberStore,
  type MemberWrite,
  parseClusterNodes,
  type RedisClient,
} from "@creditflow/member-store";

const clusterNodes = parseClusterNodes(process.env.REDIS_CLUSTER_NODES);
if (clusterNodes === undefined) {
  console.error("REDIS_CLUSTER_NODES: required (bash deploy/local/status --env)");
  process.exit(2);
}
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:16379";
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 200);
const PASSES = Number(process.env.BENCH_PASSES ?? 3);
const MEMBERS = 250;
const prefix = `bench:ack:${randomBytes(4).toString("hex")}:`;
/** About the size of a member's encoded state after a few dozen events (the bench's ~900 B). */
const stateText = "x".repeat(900);
const entry = randomBytes(120);

interface Case {
  name: string;
  client: RedisClient;
  minReplicaAcks: number;
  versions: Map<string, number>;
  roundMs: number[];
}

async function runRounds(c: Case, pass: number): Promise<void> {
  const store = new MemberStore(
    c.client,
    keySpace(`${prefix}${c.name.replace(/\W/g, "_")}:`),
    { membersPerRound: MEMBERS, minReplicaAcks: c.minReplicaAcks, replicaAckTimeoutMs: 2_000 },
    (r) => Buffer.from(JSON.stringify(r)),
  );
  for (let r = 0; r < ROUNDS; r++) {
    const writes: MemberWrite[] = [];
    for (let m = 0; m < MEMBERS; m++) {
      const userId = `u${(r * MEMBERS + m) % 5_000}`;
      writes.push({
        userId,
        expectedVersion: c.versions.get(userId) ?? 0,
        stateText,
        offsets: new Map([["o:usage:3", BigInt(pass * ROUNDS + r)]]),
        outbox: [entry, entry],
      });
    }
    const started = performance.now();
    const results = await store.write(writes);
    c.roundMs.push(performance.now() - started);
    for (const res of results) {
      if (!res.ok) throw new Error(`CAS refused for ${res.userId}`);
      c.versions.set(res.userId, res.version);
    }
  }
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const single = connectRedis({ redisUrl }, { maxRetriesPerRequest: 3 });
const cluster = connectRedis({ redisClusterNodes: clusterNodes }, { maxRetriesPerRequest: 3 });
const cases: Case[] = [
  {
    name: "single Redis, no WAIT",
    client: single,
    minReplicaAcks: 0,
    versions: new Map(),
    roundMs: [],
  },
  {
    name: "cluster, no WAIT",
    client: cluster,
    minReplicaAcks: 0,
    versions: new Map(),
    roundMs: [],
  },
  { name: "cluster, WAIT 1", client: cluster, minReplicaAcks: 1, versions: new Map(), roundMs: [] },
];
try {
  for (let pass = 0; pass < PASSES; pass++) {
    for (const c of cases) await runRounds(c, pass);
  }
  console.log(
    `| case | rounds of ${MEMBERS} writes | ms per round, median | p90 | member writes/s |`,
  );
  console.log("| --- | ---: | ---: | ---: | ---: |");
  for (const c of cases) {
    const sorted = [...c.roundMs].sort((a, b) => a - b);
    const total = c.roundMs.reduce((s, x) => s + x, 0);
    console.log(
      `| ${c.name} | ${c.roundMs.length} | ${quantile(sorted, 0.5).toFixed(2)} | ${quantile(sorted, 0.9).toFixed(2)} | ${Math.round((c.roundMs.length * MEMBERS * 1000) / total).toLocaleString("en-US")} |`,
    );
  }
} finally {
  await deleteKeysUnder(single, prefix);
  await deleteKeysUnder(cluster, prefix);
  single.disconnect();
  cluster.disconnect();
}
