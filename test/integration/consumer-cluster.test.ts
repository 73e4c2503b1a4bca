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

import { setTimeout as sleep } from "node:timers/promises";
import type { RunningConsumer } from "@creditflow/consumer";
import type { LedgerEntryRecord } from "@creditflow/contracts";
import { encodeState, ledgerBalanceMicros, openMember } from "@creditflow/engine";
import { seededRandom } from "@creditflow/loadgen";
import { keySpace, MemberStore } from "@creditflow/member-store";
import type { Cluster } from "ioredis";
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig, sumMicros } from "../../services/consumer/testing/harness.ts";
import {
  expectExact,
  type LoadScenario,
  loadScenario,
  type SteadyUsage,
  steadyUsage,
} from "../support/exact-load.ts";
import { fixture } from "../support/fixture.ts";
import { bonusGrant } from "../support/inputs.ts";
import {
  clusterNodes,
  clusterScript,
  masterPorts,
  ownerOf,
  slotOf,
} from "../support/redis-cluster.ts";
import { onCluster } from "../support/stack.ts";

const fx = fixture(import.meta.url);
const { iso } = fx;
const LATENESS_MS = 1_500;
const sweepConfig = loadConfig({ allowedLatenessMs: LATENESS_MS });
const USERS = Array.from({ length: 40 }, (_, i) => `cc${i}`);
const SEED = Number(process.env.CF_TEST_SEED ?? Date.now() % 1_000_000);
/** The load generator's seeded generator, so a failing run replays from its seed. */
const random = seededRandom(SEED);
/** The file's Redis: a Cluster client, as the skip below guarantees. */
const cluster = () => fx.redis as Cluster;

/** A scenario's consumers: its own key prefix and group. */
const keyPrefixOf = (sc: LoadScenario) => `${iso.keyPrefix}${sc.name}:`;
const groupOf = (sc: LoadScenario) => iso.group(sc.name);
/** A scenario's history sink writes into a ClickHouse database of its own. */
const databaseOf = (sc: LoadScenario) => `${iso.database}_${sc.name}`;

function startClusterConsumer(sc: LoadScenario, config = fx.config): Promise<RunningConsumer> {
  return fx.startConsumer({
    topics: sc.topics,
    keyPrefix: keyPrefixOf(sc),
    groupId: groupOf(sc),
    config,
    limits: { batchRecords: 200, membersPerRound: 8, sweeperIntervalMs: 500 },
  });
}

function startScenarioSink(sc: LoadScenario) {
  return fx.startSink({
    database: databaseOf(sc),
    topics: sc.topics,
    groupId: `${groupOf(sc)}-sink`,
    limits: { maxBatchAgeMs: 200 },
  });
}

/** A scenario with its consumer (and, with `sink`, its history sink) running under 200 events/s. */
async function underLoad(
  name: string,
  { sink = false } = {},
): Promise<{ sc: LoadScenario; consumer: RunningConsumer; usage: SteadyUsage }> {
  const sc = await loadScenario(fx, name, USERS);
  const consumer = await startClusterConsumer(sc);
  if (sink) await startScenarioSink(sc);
  return { sc, consumer, usage: steadyUsage(sc, name, 200, random) };
}

async function rows<T>(query: string): Promise<T[]> {
  const rs = await fx.clickhouse.query({ query, format: "JSONEachRow" });
  return rs.json<T>();
}

/**
 * ClickHouse holds what the consumer accepted, once: each distinct usage event sent, and per
 * member the ledger the topic holds (same entry count, same sum, which is the balance).
 */
async function expectClickHouseAgrees(
  sc: LoadScenario,
  ledger: Map<string, LedgerEntryRecord[]>,
): Promise<void> {
  const db = databaseOf(sc);
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

/** Caught up, then exact (expectExact); with a sink, ClickHouse agrees too. */
async function expectExactAll(sc: LoadScenario, { sink = false } = {}): Promise<void> {
  await fx.caughtUp([sc.topics.usage, sc.topics.commands], groupOf(sc), 180_000);
  const ledger = await expectExact(sc, keyPrefixOf(sc));
  if (sink) await expectClickHouseAgrees(sc, ledger);
}

describe.skipIf(!onCluster)("deduction consumer on a Redis Cluster", () => {
  beforeAll(() => {
    console.log(`consumer-cluster seed ${SEED} (CF_TEST_SEED=${SEED} replays the load)`);
    clusterScript("wait-healthy", "60");
  });

  it("debits exactly as the engine; the ledger sums to each balance", async () => {
    const { sc, usage } = await underLoad("steady");
    await sleep(5_000);
    await usage.stop();
    await expectExactAll(sc);
    // The members spread over every master (no key holds them all).
    const owners = new Set<string>();
    for (const user of USERS) {
      owners.add(await ownerOf(cluster(), keySpace(keyPrefixOf(sc)).member(user).member));
    }
    expect(owners.size).toBe(3);
  });

  it("ends exact after a master is SIGKILLed under load (its replica takes over)", {
    timeout: 400_000,
  }, async () => {
    const { sc, usage } = await underLoad("failover", { sink: true });
    await sleep(4_000);
    const [victim] = await masterPorts(cluster());
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
    await expectExactAll(sc, { sink: true });
  });

  it("ends exact after slots move between masters under load (MOVED, ASK)", {
    timeout: 400_000,
  }, async () => {
    const { sc, consumer, usage } = await underLoad("reshard", { sink: true });
    await sleep(3_000);
    const [from, to] = await masterPorts(cluster());
    const started = performance.now();
    clusterScript("reshard", String(from), String(to), "2000");
    console.log(
      `2000 slots moved ${from} → ${to} in ${Math.round(performance.now() - started)} ms`,
    );
    await sleep(2_000);
    clusterScript("reshard", String(to), String(from), "2000");
    await usage.stop();
    await expectExactAll(sc, { sink: true });
    const redirected = (await consumer.metrics.redisRedirections.get()).values;
    console.log(
      `commands sent again: ${redirected.map((v) => `${v.labels.why} ${v.value}`).join(", ") || "none"}`,
    );
  });

  it("forfeits idle members' bonuses once, each swept by the owner of its partition's shard", async () => {
    const sc = await loadScenario(fx, "sweep", USERS);
    await Promise.all([
      startClusterConsumer(sc, sweepConfig),
      startClusterConsumer(sc, sweepConfig),
    ]);
    const users = USERS.slice(20, 32);
    const t0 = Date.now();
    const expiresAtMs = t0 + 4_000;
    for (const userId of users) {
      const promo = { id: `${userId}-promo`, userId, amountMicros: 3_000_000, expiresAtMs };
      await sc.producer.sendCommand(
        bonusGrant({ ...promo, atMs: t0, effectiveFromMs: t0 - 1_000 }),
        "test",
      );
    }
    await fx.caughtUp([sc.topics.usage, sc.topics.commands], groupOf(sc));
    const reader = fx.reader(keyPrefixOf(sc));
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
    const ledger = await fx.ledger(sc.topics);
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
    const keys = keySpace(`${iso.keyPrefix}ask:`);
    const redirected: string[] = [];
    const store = new MemberStore(
      cluster(),
      keys,
      { membersPerRound: 10, minReplicaAcks: 1, onRedirect: (why) => redirected.push(why) },
      (r) => Buffer.from(JSON.stringify(r)),
    );
    // A member whose slot holds no key yet, so moving the slot moves nothing of anyone else's.
    const idOf = new Map((await clusterNodes(cluster())).map((n) => [n.address, n.id]));
    const masters = cluster().nodes("master");
    const nameOf = (n: (typeof masters)[number]) => `${n.options.host}:${n.options.port}`;
    let userId = "";
    let slot = -1;
    let source = "";
    for (let i = 0; slot < 0; i++) {
      const key = keys.member(`ask${i}`).member;
      const s = await slotOf(cluster(), key);
      const owner = await ownerOf(cluster(), key);
      const node = masters.find((n) => nameOf(n) === owner)!;
      if (Number(await node.call("CLUSTER", "COUNTKEYSINSLOT", s)) === 0) {
        [userId, slot, source] = [`ask${i}`, s, owner];
      }
    }
    const stateText = encodeState(
      openMember(userId, Date.now(), { config: fx.config, nowMs: Date.now() }).state,
    );
    const from = masters.find((n) => nameOf(n) === source)!;
    const to = masters.find((n) => nameOf(n) !== source)!;
    const toName = nameOf(to);
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
    }
    clusterScript("wait-healthy", "60");
  });
});
