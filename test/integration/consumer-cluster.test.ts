// Goal: the deduction consumer against a Redis Cluster (REDIS_CLUSTER_NODES, the local stack's
// CF_REDIS_CLUSTER=1) debits exactly as against one Redis: every balance equals the engine's
// replay of the distinct inputs sent, every usage event has its one debit in the ledger topic,
// the ledger (deduplicated by id) sums to each balance and no outbox is left. Checked after a
// steady load, after a master is SIGKILLed under load (its replica takes over: what a write
// counted done on — WAIT 1 — survives), and after slots move between masters under load (MOVED
// and ASK answered); in those two, a history sink also runs, and ClickHouse ends holding each
// accepted usage event once and the same ledger as the topic. And idle members' bonuses are forfeited by the sweepers of two consumers,
// each sweeping the deadline shards of its own partitions, once each. Skipped when
// REDIS_CLUSTER_NODES is unset. The killed master is restarted
// (it rejoins as a replica), so the cluster ends healthy.

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type ClickHouseClient, createClient } from "@clickhouse/client";
import { type RunningConsumer, startConsumer } from "@creditflow/consumer";
import { type LedgerEntryRecord, topicNames } from "@creditflow/contracts";
import {
  type CreditCommand,
  type EngineInput,
  encodeState,
  ledgerBalanceMicros,
  makeConfig,
  openMember,
  parsePlans,
  parseRateCard,
  type UsageEvent,
} from "@creditflow/engine";
import { type RunningSink, startSink } from "@creditflow/history";
import { AvroCodec, connectKafka, ensureTopics } from "@creditflow/kafka";
import {
  connectRedis,
  deleteKeysUnder,
  keySpace,
  MemberReader,
  MemberStore,
  parseClusterNodes,
  type RedisClient,
} from "@creditflow/member-store";
import { CreditProducer } from "@creditflow/producer";
import type { Cluster } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ledgerByUser,
  readTopic,
  replayMember,
  sumMicros,
  waitCaughtUp,
} from "../../services/consumer/testing/harness.ts";
import { isolation, stack } from "../support/stack.ts";

const clusterNodes = parseClusterNodes(process.env.REDIS_CLUSTER_NODES);
const iso = isolation(import.meta.url);
const urls = stack();
const configFile = (name: string) =>
  JSON.parse(readFileSync(new URL(`../../deploy/config/${name}`, import.meta.url), "utf8"));
const config = makeConfig(
  parseRateCard(configFile("rate-card.json"), "rate-card.json"),
  parsePlans(configFile("plans.json"), "plans.json"),
);
const LATENESS_MS = 1_500;
const sweepConfig = makeConfig(
  parseRateCard(configFile("rate-card.json"), "rate-card.json"),
  parsePlans({ ...configFile("plans.json"), allowedLatenessMs: LATENESS_MS }, "plans.json"),
);
const conn = connectKafka(urls.kafkaBrokers, `test-${iso.id}`);
const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const USERS = Array.from({ length: 40 }, (_, i) => `cc${i}`);
const codec = new AvroCodec(urls.schemaRegistryUrl);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Scenario {
  topics: ReturnType<typeof topicNames>;
  producer: CreditProducer;
  groupId: string;
  keyPrefix: string;
  consumers: RunningConsumer[];
  /** The history sink into the scenario's own ClickHouse database, when it runs one. */
  sink?: { running: RunningSink; database: string };
  /** Every distinct input sent, per user, in send order. */
  sent: Map<string, EngineInput[]>;
}
const scenarios: Scenario[] = [];
let redis: RedisClient;
const ch: ClickHouseClient = createClient({ url: urls.clickhouseUrl });

function clusterScript(...args: string[]): string {
  return execFileSync("bash", ["deploy/local/services/redis-cluster.sh", ...args], {
    cwd: repoRoot,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 180_000,
  });
}

/** The ports of the cluster's masters, as CLUSTER NODES says now. */
async function masterPorts(): Promise<number[]> {
  const text = String(await (redis as Cluster).call("CLUSTER", "NODES"));
  return text
    .trim()
    .split("\n")
    .map((line) => line.split(" "))
    .filter(([, , flags]) => flags!.includes("master") && !flags!.includes("fail"))
    .map(([, address]) => Number(address!.split("@")[0]!.split(":")[1]));
}

async function scenario(name: string): Promise<Scenario> {
  const topics = topicNames(`t_${iso.id}_${name}`);
  await ensureTopics(conn, [topics.usage, topics.commands], 4);
  await codec.register(topics, ["ledger"]);
  const producer = await CreditProducer.create({
    brokers: urls.kafkaBrokers,
    schemaRegistryUrl: urls.schemaRegistryUrl,
    service: "cluster-test",
    rateCard: config.rateCard,
    topics,
    compression: "none",
    limits: { lingerMs: 2 },
  });
  const sc: Scenario = {
    topics,
    producer,
    groupId: iso.group(name),
    keyPrefix: `${iso.keyPrefix}${name}:`,
    consumers: [],
    sent: new Map(),
  };
  scenarios.push(sc);
  // Half the users hold a bonus, so debits cross from bonus to subscription.
  for (const user of USERS.slice(0, 20)) {
    const grant: CreditCommand = {
      type: "grant_bonus",
      id: `${user}-bonus`,
      userId: user,
      atMs: Date.now() - 60_000,
      source: "promotion",
      amountMicros: 2_000_000,
      effectiveFromMs: Date.now() - 60_000,
      expiresAtMs: Date.now() + 30 * 86_400_000,
      priority: 0,
      recurrence: null,
    };
    await producer.sendCommand(grant, "test");
    sc.sent.set(user, [grant]);
  }
  return sc;
}

async function startClusterConsumer(sc: Scenario, engineConfig = config): Promise<RunningConsumer> {
  const consumer = await startConsumer({
    brokers: urls.kafkaBrokers,
    schemaRegistryUrl: urls.schemaRegistryUrl,
    redisClusterNodes: clusterNodes!,
    topics: sc.topics,
    keyPrefix: sc.keyPrefix,
    groupId: sc.groupId,
    config: engineConfig,
    logger: pino({ level: "warn" }),
    limits: {
      sessionTimeoutMs: 6_000,
      heartbeatIntervalMs: 500,
      batchRecords: 200,
      membersPerRound: 8,
      sweeperIntervalMs: 500,
    },
  });
  sc.consumers.push(consumer);
  await consumer.joined;
  return consumer;
}

/** The history sink of the scenario, into a ClickHouse database of its own. */
async function startScenarioSink(sc: Scenario): Promise<void> {
  const database = `${iso.database}_${sc.groupId.slice(-8).replace(/[^a-z0-9]/g, "_")}`;
  const running = await startSink({
    brokers: urls.kafkaBrokers,
    schemaRegistryUrl: urls.schemaRegistryUrl,
    clickhouseUrl: urls.clickhouseUrl,
    database,
    topics: sc.topics,
    groupId: `${sc.groupId}-sink`,
    rateCard: config.rateCard,
    logger: pino({ level: "warn" }),
    limits: { maxBatchAgeMs: 200 },
  });
  sc.sink = { running, database };
}

async function rows<T>(query: string): Promise<T[]> {
  const rs = await ch.query({ query, format: "JSONEachRow" });
  return rs.json<T>();
}

/**
 * ClickHouse holds what the consumer accepted, once: each distinct usage event sent, and per
 * member the ledger the topic holds (same entry count, same sum, which is the balance).
 */
async function expectClickHouseAgrees(
  sc: Scenario,
  ledger: Map<string, LedgerEntryRecord[]>,
): Promise<void> {
  const db = sc.sink!.database;
  const usageIds = new Set<string>();
  for (const inputs of sc.sent.values()) {
    for (const input of inputs) if (input.type === "usage") usageIds.add(input.id);
  }
  const want = new Map<string, { n: number; sum: number }>();
  for (const [user, entries] of ledger)
    want.set(user, { n: entries.length, sum: sumMicros(entries) });
  type LedgerRow = { user_id: string; n: string; sum: string };
  const read = () =>
    rows<LedgerRow>(
      `SELECT user_id, count() AS n, sum(amount_micros) AS sum FROM ${db}.ledger_entries FINAL GROUP BY user_id`,
    );
  const deadline = Date.now() + 60_000;
  let got = await read();
  const entriesIn = (r: LedgerRow[]) => r.reduce((n, row) => n + Number(row.n), 0);
  const entriesWanted = [...want.values()].reduce((n, w) => n + w.n, 0);
  while (entriesIn(got) < entriesWanted && Date.now() < deadline) {
    await sleep(500);
    got = await read();
  }
  expect(new Map(got.map((r) => [r.user_id, { n: Number(r.n), sum: Number(r.sum) }]))).toEqual(
    want,
  );
  const [usage] = await rows<{ n: string; d: string }>(
    `SELECT count() AS n, uniqExact(event_id) AS d FROM ${db}.usage_events FINAL`,
  );
  expect({ n: Number(usage!.n), distinct: Number(usage!.d) }).toEqual({
    n: usageIds.size,
    distinct: usageIds.size,
  });
  const [debits] = await rows<{ n: string }>(
    `SELECT uniqExact(splitByChar('#', entry_id)[1]) AS n FROM ${db}.ledger_entries FINAL WHERE kind = 'debit'`,
  );
  expect(Number(debits!.n)).toBe(usageIds.size);
  console.log(
    `ClickHouse agrees: ${usageIds.size} usage events once each, ${entriesWanted} ledger entries`,
  );
}

/** Usage at a steady pace until stopped, ~5% of events resent (same id, same content). */
function backgroundUsage(sc: Scenario, prefix: string, perSecond: number) {
  let running = true;
  let n = 0;
  const done = (async () => {
    while (running) {
      const batch = [];
      for (let i = 0; i < perSecond / 10; i++) {
        const user = USERS[(n * 7) % USERS.length]!;
        const u = {
          eventId: `${prefix}-${user}-${n++}`,
          userId: user,
          taskId: `${user}-t${n % 5}`,
          feature: "chat",
          model: "kimi-k2",
          inputTokens: 1000 + (n % 4000),
          outputTokens: 100 + (n % 400),
          occurredAt: Date.now(),
        };
        const event: UsageEvent = {
          type: "usage",
          id: u.eventId,
          userId: user,
          taskId: u.taskId,
          feature: "chat",
          taskKind: null,
          model: u.model,
          inputTokens: u.inputTokens,
          outputTokens: u.outputTokens,
          cachedInputTokens: 0,
          eventAtMs: u.occurredAt,
        };
        const list = sc.sent.get(user) ?? [];
        list.push(event);
        sc.sent.set(user, list);
        batch.push(sc.producer.recordUsage(u));
        if (n % 20 === 0) batch.push(sc.producer.recordUsage(u));
      }
      await Promise.all(batch);
      await sleep(100);
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      return n;
    },
  };
}

/**
 * Every user's balance equals the engine's over the distinct inputs sent, the outbox is drained,
 * the ledger topic (deduplicated by id, copies identical) sums to the balance, and each usage
 * event has its one debit in the ledger.
 */
async function expectExactAll(sc: Scenario): Promise<void> {
  await waitCaughtUp(conn, sc.groupId, [sc.topics.usage, sc.topics.commands], 180_000);
  const reader = new MemberReader(redis, keySpace(sc.keyPrefix));
  const members = await reader.members(USERS);
  const raw = await readTopic(conn, sc.topics.ledger, { idleMs: 3_000, timeoutMs: 120_000 });
  const ledger = await ledgerByUser(codec, raw);
  let events = 0;
  for (const user of USERS) {
    const inputs = sc.sent.get(user) ?? [];
    const expected = replayMember(user, inputs, config, Date.now())!;
    const stored = members.get(user)!;
    expect(stored.state, user).not.toBeNull();
    expect(ledgerBalanceMicros(stored.state!), user).toBe(ledgerBalanceMicros(expected));
    expect(stored.outboxEntries, user).toBe(0);
    const entries = ledger.get(user) ?? [];
    expect(sumMicros(entries), user).toBe(ledgerBalanceMicros(stored.state!));
    const debitCauses = entries
      .filter((e) => e.kind === "debit")
      .map((e) => e.entryId.split("#")[0]);
    const usageIds = inputs.filter((i) => i.type === "usage").map((i) => i.id);
    expect(new Set(debitCauses), user).toEqual(new Set(usageIds));
    events += usageIds.length;
  }
  console.log(
    `exact on the cluster: ${USERS.length} members, ${events} distinct usage events, ${raw.length} ledger records read`,
  );
  if (sc.sink !== undefined) await expectClickHouseAgrees(sc, ledger);
}

describe.skipIf(clusterNodes === undefined)("deduction consumer on a Redis Cluster", () => {
  beforeAll(async () => {
    redis = connectRedis({ redisClusterNodes: clusterNodes! }, { maxRetriesPerRequest: 3 });
    clusterScript("wait-healthy", "60");
  });

  afterAll(async () => {
    for (const sc of scenarios) {
      for (const c of sc.consumers) await c.stop().catch(() => undefined);
      await sc.sink?.running.stop().catch(() => undefined);
      if (sc.sink !== undefined) {
        await ch.command({ query: `DROP DATABASE IF EXISTS ${sc.sink.database}` }).catch(() => {});
      }
      await sc.producer.close();
      await deleteKeysUnder(redis, sc.keyPrefix).catch(() => undefined);
    }
    redis?.disconnect();
    await ch.close();
  });

  it("debits exactly as the engine; the ledger sums to each balance", async () => {
    const sc = await scenario("steady");
    await startClusterConsumer(sc);
    const usage = backgroundUsage(sc, "s", 200);
    await sleep(5_000);
    await usage.stop();
    await expectExactAll(sc);
    // The members spread over every master (no key holds them all).
    const owners = new Set<string>();
    const cluster = redis as Cluster;
    for (const user of USERS) {
      const slot = Number(
        await cluster.call("CLUSTER", "KEYSLOT", keySpace(sc.keyPrefix).member(user).member),
      );
      owners.add(cluster.slots[slot]![0]!);
    }
    expect(owners.size).toBe(3);
  });

  it("ends exact after a master is SIGKILLed under load (its replica takes over)", {
    timeout: 400_000,
  }, async () => {
    const sc = await scenario("failover");
    await startClusterConsumer(sc);
    await startScenarioSink(sc);
    const usage = backgroundUsage(sc, "f", 200);
    await sleep(4_000);
    const [victim] = await masterPorts();
    const started = performance.now();
    console.log(clusterScript("kill-master", String(victim)).trim());
    console.log(
      `master ${victim} killed; replica promoted after ${Math.round(performance.now() - started)} ms`,
    );
    // Meanwhile the promoted master has no replica: its writes wait (WAIT 1 times out, the units
    // fail and are redone), none counts as done until the old master is back as its replica.
    await sleep(4_000);
    clusterScript("restart-node", String(victim));
    console.log(
      `node ${victim} back as a replica after ${Math.round(performance.now() - started)} ms`,
    );
    await sleep(2_000);
    await usage.stop();
    await expectExactAll(sc);
  });

  it("ends exact after slots move between masters under load (MOVED, ASK)", {
    timeout: 400_000,
  }, async () => {
    const sc = await scenario("reshard");
    await startClusterConsumer(sc);
    await startScenarioSink(sc);
    const usage = backgroundUsage(sc, "r", 200);
    await sleep(3_000);
    const [from, to] = await masterPorts();
    const started = performance.now();
    clusterScript("reshard", String(from), String(to), "2000");
    console.log(
      `2000 slots moved ${from} → ${to} in ${Math.round(performance.now() - started)} ms`,
    );
    await sleep(2_000);
    clusterScript("reshard", String(to), String(from), "2000");
    await usage.stop();
    await expectExactAll(sc);
    const redirected = (await sc.consumers[0]!.metrics.redisRedirections.get()).values;
    console.log(
      `commands sent again: ${redirected.map((v) => `${v.labels.why} ${v.value}`).join(", ") || "none"}`,
    );
  });

  it("forfeits idle members' bonuses once, each swept by the owner of its partition's shard", async () => {
    const sc = await scenario("sweep");
    await Promise.all([
      startClusterConsumer(sc, sweepConfig),
      startClusterConsumer(sc, sweepConfig),
    ]);
    const users = USERS.slice(20, 32);
    const t0 = Date.now();
    const expiresAtMs = t0 + 4_000;
    for (const user of users) {
      const grant: CreditCommand = {
        type: "grant_bonus",
        id: `${user}-promo`,
        userId: user,
        atMs: t0,
        source: "promotion",
        amountMicros: 3_000_000,
        effectiveFromMs: t0 - 1_000,
        expiresAtMs,
        priority: 0,
        recurrence: null,
      };
      await sc.producer.sendCommand(grant, "test");
    }
    await waitCaughtUp(conn, sc.groupId, [sc.topics.usage, sc.topics.commands]);
    const reader = new MemberReader(redis, keySpace(sc.keyPrefix));
    // Sharded: the members' deadlines are spread over the partitions' shards, none holds them all.
    const shards = await reader.deadlineShards();
    expect(shards.length).toBeGreaterThan(1);
    const deadlineMs = expiresAtMs + LATENESS_MS;
    const forfeited = new Set<string>();
    while (forfeited.size < users.length && Date.now() < deadlineMs + 15_000) {
      await sleep(200);
      for (const [user, m] of await reader.members(users)) {
        if (
          m.state !== null &&
          !m.state.grants.some((g) => g.cls === "bonus" && g.remainingMicros > 0)
        ) {
          forfeited.add(user);
        }
      }
    }
    expect(forfeited.size).toBe(users.length);
    const raw = await readTopic(conn, sc.topics.ledger, { idleMs: 2_000 });
    const ledger = await ledgerByUser(codec, raw);
    const members = await reader.members(users);
    for (const user of users) {
      const entries = ledger.get(user) ?? [];
      const expiries = entries.filter((e) => e.kind === "expire");
      expect(expiries, user).toHaveLength(1);
      expect(expiries[0]!.processedAt).toBeGreaterThanOrEqual(deadlineMs);
      expect(sumMicros(entries), user).toBe(ledgerBalanceMicros(members.get(user)!.state!));
    }
  });

  it("writes and reads a member whose slot is migrating (ASK to the importing node)", async () => {
    const cluster = redis as Cluster;
    const keys = keySpace(`${iso.keyPrefix}ask:`);
    const redirected: string[] = [];
    const store = new MemberStore(
      redis,
      keys,
      { membersPerRound: 10, minReplicaAcks: 1, onRedirect: (why) => redirected.push(why) },
      (r) => Buffer.from(JSON.stringify(r)),
    );
    // A member whose slot holds no key yet, so moving the slot moves nothing of anyone else's.
    const nodesText = String(await cluster.call("CLUSTER", "NODES"));
    const idOf = new Map<string, string>();
    for (const line of nodesText.trim().split("\n")) {
      const [id, address] = line.split(" ");
      idOf.set(address!.split("@")[0]!, id!);
    }
    let userId = "";
    let slot = -1;
    let source = "";
    for (let i = 0; slot < 0; i++) {
      const key = keys.member(`ask${i}`).member;
      const s = Number(await cluster.call("CLUSTER", "KEYSLOT", key));
      const owner = cluster.slots[s]![0]!;
      const node = cluster
        .nodes("master")
        .find((n) => `${n.options.host}:${n.options.port}` === owner)!;
      if (Number(await node.call("CLUSTER", "COUNTKEYSINSLOT", s)) === 0) {
        [userId, slot, source] = [`ask${i}`, s, owner];
      }
    }
    const stateText = encodeState(
      openMember(userId, Date.now(), { config, nowMs: Date.now() }).state,
    );
    const masters = cluster.nodes("master");
    const from = masters.find((n) => `${n.options.host}:${n.options.port}` === source)!;
    const to = masters.find((n) => `${n.options.host}:${n.options.port}` !== source)!;
    const toName = `${to.options.host}:${to.options.port}`;
    await to.call("CLUSTER", "SETSLOT", slot, "IMPORTING", idOf.get(source)!);
    await from.call("CLUSTER", "SETSLOT", slot, "MIGRATING", idOf.get(toName)!);
    try {
      // Absent from the migrating node: it answers ASK, the importing node runs the write.
      const [written] = await store.write([
        { userId, expectedVersion: 0, stateText, offsets: new Map(), outbox: [] },
      ]);
      expect(written).toMatchObject({ ok: true, version: 1 });
      const loaded = await store.load([userId]);
      expect(loaded.get(userId)?.version).toBe(1);
      const [again] = await store.write([
        { userId, expectedVersion: 1, stateText, offsets: new Map(), outbox: [] },
      ]);
      expect(again).toMatchObject({ ok: true, version: 2 });
      expect(redirected.filter((w) => w === "ask").length).toBeGreaterThanOrEqual(3);
      expect(Number(await to.call("CLUSTER", "COUNTKEYSINSLOT", slot))).toBe(1);
    } finally {
      // The slot ends on the importing node (with the one key it holds).
      await to.call("CLUSTER", "SETSLOT", slot, "NODE", idOf.get(toName)!);
      await from.call("CLUSTER", "SETSLOT", slot, "NODE", idOf.get(toName)!);
      await deleteKeysUnder(redis, keys.prefix);
    }
    clusterScript("wait-healthy", "60");
  });
});
