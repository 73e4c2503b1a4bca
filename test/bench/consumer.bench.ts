// End-to-end debit rate of the deduction consumer: a topic pre-filled with usage events (default
// 1,000,000 over 100,000 members) is consumed by a consumer process (main.ts as a child) until
// Redis holds the final balances (the group's committed offsets reach the end, which the consumer
// moves only after the atomic writes), timed from its group join. Next to it, in the same run and
// timed from its own group join, a baseline consumer of the same topic, also a fresh child
// process (consumer-baseline.ts), that decodes each record and writes one Redis key per record
// (no engine, no idempotency, no ledger). Prints events/s, the ratio, the consumer's peak RSS and
// Redis memory per member.
//   node test/bench/consumer.bench.ts [--events 1000000] [--members 100000] [--partitions 12]
//     [--pairs 1] [--redis-cluster]
// --pairs N runs the baseline and the consumer N times each, alternating, over the same topic
// (each run in its own group and, for the consumer, its own Redis keys) and prints every pair's
// ratio and their median: on a shared machine one pair's ratio moves by several points.
// --redis-cluster: each pair also runs the consumer on the local Redis Cluster (REDIS_CLUSTER_NODES,
// from `bash deploy/local/status --env`; minReplicaAcks 1 unless CF_CONSUMER_LIMITS says
// otherwise), right after its single-Redis run over the same topic, its balances checked there:
// single node and cluster side by side against the same baseline (which stays on the single
// Redis), with the cluster's rate as a share of the single node's.
// Uses the running local stack (./creditflow up); its names are unique per run and removed after.

import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { UsageEventRecord } from "@creditflow/contracts";
import { ledgerBalanceMicros, priceUsage } from "@creditflow/engine";
import { AvroCodec, ensureTopics } from "@creditflow/kafka";
import {
  connectRedis,
  deleteKeysUnder,
  keySpace,
  MemberReader,
  parseClusterNodes,
  type RedisClient,
} from "@creditflow/member-store";
import { type Cluster, Redis } from "ioredis";
import { waitCaughtUp } from "../../services/consumer/testing/harness.ts";
import { benchRun, benchStack } from "./bench-run.ts";

const { values: args } = parseArgs({
  options: {
    events: { type: "string", default: "1000000" },
    members: { type: "string", default: "100000" },
    partitions: { type: "string", default: "12" },
    pairs: { type: "string", default: "1" },
    keep: { type: "boolean", default: false },
    "redis-cluster": { type: "boolean", default: false },
  },
});
const EVENTS = Number(args.events);
const MEMBERS = Number(args.members);
const PARTITIONS = Number(args.partitions);
const PAIRS = Number(args.pairs);
if (!Number.isInteger(PAIRS) || PAIRS < 1) throw new Error("--pairs: a whole number, 1 or more");

const { brokers, registryUrl, redisUrl } = benchStack;
const { id: runId, topicPrefix, topics, keyPrefix, config, conn } = benchRun("consumer");
const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const redis = new Redis(redisUrl);
const clusterNodes = args["redis-cluster"]
  ? parseClusterNodes(process.env.REDIS_CLUSTER_NODES)
  : undefined;
if (args["redis-cluster"] && clusterNodes === undefined) {
  throw new Error("--redis-cluster: REDIS_CLUSTER_NODES names no node");
}
/** Where a consumer run writes: the single Redis, or the cluster (--redis-cluster). */
type Store = "single" | "cluster";
const stores: Store[] = clusterNodes === undefined ? ["single"] : ["single", "cluster"];
const clusterRedis: RedisClient | undefined =
  clusterNodes === undefined ? undefined : connectRedis({ redisClusterNodes: clusterNodes });
const storeRedis = (store: Store): RedisClient => (store === "single" ? redis : clusterRedis!);
/** The nodes holding a store's keys (its masters on a cluster). */
const storeNodes = (store: Store): Redis[] =>
  store === "single" ? [redis] : (clusterRedis as Cluster).nodes("master");
const codec = new AvroCodec(registryUrl);

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const log = (s: string) => process.stderr.write(`${s}\n`);

/** Pre-fills the usage topic; returns each member's expected total cost. */
async function prefill(): Promise<Map<string, number>> {
  await ensureTopics(conn, [topics.usage, topics.commands], PARTITIONS);
  await codec.register(topics, ["usage", "command", "ledger"]);
  const producer = conn.kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const costs = new Map<string, number>();
  const t0 = Date.now();
  const BATCH = 5_000;
  let inflight: Promise<unknown>[] = [];
  for (let i = 0; i < EVENTS; i += BATCH) {
    const messages = [];
    for (let j = i; j < Math.min(EVENTS, i + BATCH); j++) {
      const userId = `m${j % MEMBERS}`;
      const r: UsageEventRecord = {
        eventId: `e${j}`,
        userId,
        taskId: `t${Math.floor(j / MEMBERS)}`,
        feature: "chat",
        taskKind: null,
        model: "kimi-k2",
        inputTokens: 200 + (j % 300),
        outputTokens: 50 + (j % 70),
        cachedInputTokens: 0,
        occurredAt: t0 - 60_000 + Math.floor(j / MEMBERS),
        service: "bench",
      };
      const cost = priceUsage(config.rateCard, "chat", "kimi-k2", r)!;
      costs.set(userId, (costs.get(userId) ?? 0) + cost);
      messages.push({ key: userId, value: codec.encode("usage", r) });
    }
    inflight.push(producer.send({ topic: topics.usage, acks: 1, messages }));
    if (inflight.length >= 8) {
      await Promise.all(inflight);
      inflight = [];
    }
  }
  await Promise.all(inflight);
  await producer.disconnect();
  log(`pre-filled ${fmt(EVENTS)} events over ${fmt(MEMBERS)} members in ${Date.now() - t0} ms`);
  return costs;
}

async function redisUsedBytes(store: Store): Promise<number> {
  let used = 0;
  for (const node of storeNodes(store)) {
    used += Number(/used_memory:(\d+)/.exec(await node.info("memory"))![1]);
  }
  return used;
}

/** MEMORY USAGE of a key, asked of the node that holds it. */
async function keyBytes(store: Store, key: string): Promise<number> {
  for (const node of storeNodes(store)) {
    const bytes = await node.call("MEMORY", "USAGE", key).catch(() => null);
    if (bytes !== null) return Number(bytes);
  }
  return Number.NaN;
}

/** The environment of a child process (the baseline, the consumer) on this run's names. */
function childEnv(keys: string, groupId: string, more: Record<string, string>): NodeJS.ProcessEnv {
  return {
    ...process.env,
    KAFKAJS_NO_PARTITIONER_WARNING: "1",
    KAFKA_BROKERS: brokers.join(","),
    SCHEMA_REGISTRY_URL: registryUrl,
    REDIS_URL: redisUrl,
    // The single Redis unless a consumer run says otherwise (--redis-cluster).
    REDIS_CLUSTER_NODES: "",
    CF_TOPIC_PREFIX: topicPrefix,
    CF_KEY_PREFIX: keys,
    CF_CONSUMER_GROUP: groupId,
    ...more,
  };
}

/**
 * The baseline (consumer-baseline.ts): decode each record, write one key per record (pipelined
 * per batch), in a fresh process of its own as the consumer is (inside this process, whose code
 * the prefill and earlier pairs had warmed up, its later runs were a third faster than its first).
 */
async function baseline(
  pair: number,
): Promise<{ seconds: number; perSecond: number; cpuSeconds: number }> {
  const child: ChildProcess = spawn(
    process.execPath,
    [fileURLToPath(new URL("./consumer-baseline.ts", import.meta.url))],
    {
      cwd: repoRoot,
      env: childEnv(keyPrefix, `${runId}-baseline-${pair}`, {
        CF_BENCH_EVENTS: String(EVENTS),
      }),
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  let text = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    text += chunk.toString();
  });
  const code = await new Promise<number | null>((r) => child.on("exit", r));
  const line = text.trim().split("\n").at(-1) ?? "";
  if (code !== 0 || !line.startsWith("{")) {
    throw new Error(`baseline process exited with ${code}: ${text.slice(-500)}`);
  }
  const { seconds, cpuSeconds, firstBatchSeconds } = JSON.parse(line) as {
    seconds: number;
    cpuSeconds: number;
    firstBatchSeconds: number;
  };
  log(`baseline: first batch ${firstBatchSeconds.toFixed(1)} s after the join`);
  return { seconds, perSecond: EVENTS / seconds, cpuSeconds };
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function deleteKeys(prefix: string, client: RedisClient = redis): Promise<void> {
  await deleteKeysUnder(client, prefix);
}

function peakRssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

async function consumerRun(
  pair: number,
  prefix: string,
  store: Store,
): Promise<{
  seconds: number;
  perSecond: number;
  peakRss: number;
  cpuSeconds: number;
}> {
  const groupId = `${runId}-consumer-${store}-${pair}`;
  const t0 = performance.now();
  // CF_BENCH_PROFILE=<dir>: write a CPU profile of the consumer process there.
  const profile = process.env.CF_BENCH_PROFILE;
  const nodeArgs = profile ? ["--cpu-prof", `--cpu-prof-dir=${profile}`] : [];
  // CF_BENCH_NODE_ARGS: more node flags for the consumer process (e.g. --trace-gc).
  nodeArgs.push(...(process.env.CF_BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean));
  const child: ChildProcess = spawn(
    process.execPath,
    // CF_BENCH_MAIN: another checkout's services/consumer/src/main.ts (A/B in one sitting).
    [...nodeArgs, process.env.CF_BENCH_MAIN ?? "services/consumer/src/main.ts"],
    {
      cwd: repoRoot,
      env: childEnv(prefix, groupId, {
        CF_CONSUMER_LIMITS: process.env.CF_CONSUMER_LIMITS ?? "",
        ...(store === "single" ? {} : { REDIS_CLUSTER_NODES: clusterNodes!.join(",") }),
      }),
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  // The clock starts when the process has joined its group (the baseline's at its first batch).
  let joinedAt = 0;
  let cpuAtJoin = 0;
  let text = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    if (process.env.CF_BENCH_LOG) process.stderr.write(chunk);
    if (joinedAt !== 0) return;
    text += chunk.toString();
    if (text.includes('"msg":"joined group"')) {
      joinedAt = performance.now();
      cpuAtJoin = cpuSecondsOf(child.pid!);
    }
  });
  // Polled every 100 ms (each poll is two admin requests): the end within 0.1 s.
  await waitCaughtUp(conn, groupId, [topics.usage], 3_600_000, 100);
  const seconds = (performance.now() - (joinedAt || t0)) / 1000;
  const peakRss = peakRssMiB(child.pid!);
  const cpuSeconds = cpuSecondsOf(child.pid!) - cpuAtJoin;
  child.kill("SIGTERM");
  await new Promise((r) => child.on("exit", r));
  return { seconds, perSecond: EVENTS / seconds, peakRss, cpuSeconds };
}

/** Checks a sample of members: balance = free allowance - the cost of their events. */
async function checkBalances(
  store: Store,
  prefix: string,
  costs: Map<string, number>,
): Promise<number> {
  const free = config.tiersById.get(config.plans.freeTierId)!.monthlyAllowanceMicros;
  let checked = 0;
  for (let i = 0; i < MEMBERS; i += Math.max(1, Math.floor(MEMBERS / 500))) {
    const userId = `m${i}`;
    const m = await new MemberReader(storeRedis(store), keySpace(prefix)).state(userId);
    const expected = free - (costs.get(userId) ?? 0);
    if (m === null || ledgerBalanceMicros(m.state) !== expected) {
      throw new Error(
        `member ${userId}: balance ${m && ledgerBalanceMicros(m.state)}, expected ${expected}`,
      );
    }
    checked++;
  }
  return checked;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
/** "a" for one value, "a to b" for several. */
const range = (xs: number[], f: (x: number) => string) => {
  const lo = f(Math.min(...xs));
  const hi = f(Math.max(...xs));
  return lo === hi ? lo : `${lo} to ${hi}`;
};

async function main(): Promise<void> {
  log(
    `run ${runId}: ${fmt(EVENTS)} events, ${fmt(MEMBERS)} members, ${PARTITIONS} partitions, ${PAIRS} pair(s)`,
  );
  const costs = await prefill();

  type StoreRun = {
    run: Awaited<ReturnType<typeof consumerRun>>;
    bytesPerMember: number;
    checked: number;
    hashBytes: number;
  };
  type Pair = { base: Awaited<ReturnType<typeof baseline>>; runs: Map<Store, StoreRun> };
  const pairs: Pair[] = [];
  for (let pair = 1; pair <= PAIRS; pair++) {
    const base = await baseline(pair);
    log(`baseline ${pair}: ${base.seconds.toFixed(1)} s`);
    await deleteKeys(`${keyPrefix}base:`);

    const prefix = PAIRS === 1 ? keyPrefix : `${keyPrefix}${pair}:`;
    const runs = new Map<Store, StoreRun>();
    for (const store of stores) {
      const before = await redisUsedBytes(store);
      const run = await consumerRun(pair, prefix, store);
      const after = await redisUsedBytes(store);
      log(`consumer ${pair} (${store}): ${run.seconds.toFixed(1)} s`);
      const checked = await checkBalances(store, prefix, costs);
      const hashBytes = await keyBytes(store, keySpace(prefix).member("m0").member);
      runs.set(store, { run, bytesPerMember: (after - before) / MEMBERS, checked, hashBytes });
      // The next run's Redis starts as this one's did.
      if (pair < PAIRS) await deleteKeys(prefix, storeRedis(store));
    }
    pairs.push({ base, runs });
  }

  console.log(
    `\n### Deduction consumer, end to end (${fmt(EVENTS)} usage events, ${fmt(MEMBERS)} members, ${PARTITIONS} partitions)\n`,
  );
  const storeName = (store: Store) =>
    store === "single" ? "one Redis" : "Redis Cluster, 3 masters + 3 replicas, WAIT 1";
  console.log("| consumer | seconds | events/s |");
  console.log("|---|---:|---:|");
  pairs.forEach(({ base, runs }, i) => {
    const n = PAIRS === 1 ? "" : ` (pair ${i + 1})`;
    console.log(
      `| baseline: decode + one Redis SET per record${n} | ${base.seconds.toFixed(1)} | ${fmt(base.perSecond)} |`,
    );
    for (const [store, { run }] of runs) {
      console.log(
        `| creditflow consumer on ${storeName(store)} (engine, atomic CAS write, outbox, ledger relay, commit)${n} | ${run.seconds.toFixed(1)} | ${fmt(run.perSecond)} |`,
      );
    }
  });
  const each = (store: Store) => pairs.map((p) => p.runs.get(store)!);
  const ratioLine = (label: string, ratios: number[]) =>
    PAIRS === 1
      ? `- ${label}: ${pct(ratios[0]!)}`
      : `- ${label}: median ${pct(median(ratios))} (pairs in order: ${ratios.map(pct).join(", ")})`;
  console.log("");
  for (const store of stores) {
    console.log(
      ratioLine(
        `ratio consumer on ${storeName(store)} / baseline`,
        pairs.map((p) => p.runs.get(store)!.run.perSecond / p.base.perSecond),
      ),
    );
  }
  if (stores.includes("cluster")) {
    console.log(
      ratioLine(
        "ratio cluster / one Redis (events/s)",
        pairs.map(
          (p) => p.runs.get("cluster")!.run.perSecond / p.runs.get("single")!.run.perSecond,
        ),
      ),
    );
  }
  const cpuPerK = (cpu: number) => ((cpu * 1000) / (EVENTS / 1000)).toFixed(1);
  const perStore = (f: (r: StoreRun) => number, show: (x: number) => string) =>
    stores.map((store) => `${store} ${range(each(store).map(f), show)}`).join(", ");
  console.log(
    `- CPU per 1,000 events: consumer process ${perStore((r) => r.run.cpuSeconds, cpuPerK)} ms, baseline ${range(
      pairs.map((p) => p.base.cpuSeconds),
      cpuPerK,
    )} ms (less sensitive than events/s to what else runs on the machine; Redis's and Kafka's CPU not counted)`,
  );
  console.log(
    `- consumer process peak RSS: ${perStore(
      (r) => r.run.peakRss,
      (x) => x.toFixed(0),
    )} MiB`,
  );
  console.log(
    `- Redis memory per member (used_memory delta over the masters / members): ${perStore(
      (r) => r.bytesPerMember,
      fmt,
    )} bytes; member hash alone ${perStore((r) => r.hashBytes, fmt)} bytes`,
  );
  console.log(
    `- balances checked against the rate card: ${each("single")[0]!.checked} members per run, all exact`,
  );
  console.log(
    "- all timed from their group join (so each includes its first fetch) to the last commit (consumer, polled every 100 ms) or the last Redis write (baseline)\n",
  );

  if (!args.keep) {
    await deleteKeys(keyPrefix);
    if (clusterRedis !== undefined) await deleteKeys(keyPrefix, clusterRedis);
    const admin = conn.kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => undefined);
    await admin.disconnect();
  }
  redis.disconnect();
  clusterRedis?.disconnect();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
