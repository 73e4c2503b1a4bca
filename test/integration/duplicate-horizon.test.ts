// Goal: "one id, one effect" for the duplicate horizon, on the real stack. A member's 5,000 usage
// events spread over the last 20 hours, then 1,000 of them produced again as new Kafka records
// after thousands of newer events: the balance, the ledger topic and ClickHouse are unchanged and
// nothing is dead-lettered; the same after Redis is lost and rebuilt. An event whose own time is
// past the horizon is dead-lettered `too_old` and debits nothing. With a horizon of seconds, a
// consumer stopped for several horizons applies every event accepted meanwhile (none too old:
// age is measured at Kafka's acceptance, not at processing), and a copy accepted within the
// horizon of its first copy is still a duplicate.

import type { RunningConsumer } from "@creditflow/consumer";
import type { LedgerEntryRecord, TopicNames, UsageInput } from "@creditflow/contracts";
import { ledgerBalanceMicros } from "@creditflow/engine";
import { deleteKeysUnder } from "@creditflow/member-store";
import type { CreditProducer } from "@creditflow/producer";
import { beforeAll, describe, expect, it } from "vitest";
import {
  ledgerByUser,
  loadConfig,
  readMember,
  readTopic,
  sumMicros,
  waitCaughtUp,
} from "../../services/consumer/testing/harness.ts";
import { fixture } from "../support/fixture.ts";
import { waitFor } from "../support/wait.ts";

const fx = fixture(import.meta.url, { partitions: 3 });
const { iso, conn, groupId, codec } = fx;
const HOUR_MS = 3_600_000;
const config = fx.config; // the shipped 24-hour horizon
const topics = fx.topicNames();
const ch = fx.clickhouseIn();
const redis = fx.redis;

let producer: CreditProducer;
let consumer: RunningConsumer | null = null;

/** A producer whose own check lets everything through: the consumer is what is tested here. */
function openProducer(to: TopicNames): Promise<CreditProducer> {
  return fx.producer({ topics: to, dedupeHorizonMs: 35 * 24 * HOUR_MS });
}

function usage(userId: string, n: number, occurredAt: number): UsageInput {
  return {
    eventId: `${userId}-e${n}`,
    userId,
    taskId: `${userId}-t${Math.floor(n / 4)}`,
    feature: "chat",
    model: "kimi-k2",
    inputTokens: 1_000 + (n % 13),
    outputTokens: 200 + (n % 7),
    occurredAt,
  };
}

/** The usage events a member's entries were made by (`<eventId>#<n>`, debits and overdrafts). */
function usageCauses(entries: LedgerEntryRecord[]): Set<string> {
  const kinds = new Set(["debit", "overdraft"]);
  return new Set(entries.filter((e) => kinds.has(e.kind)).map((e) => e.entryId.split("#")[0]!));
}

async function sendAll(p: CreditProducer, inputs: UsageInput[]): Promise<void> {
  for (let i = 0; i < inputs.length; i += 500) await p.recordUsageBatch(inputs.slice(i, i + 500));
}

async function chCount(query: string): Promise<number> {
  const rows = await (await ch.query({ query, format: "JSONEachRow" })).json<{ n: string }>();
  return Number(rows[0]!.n);
}

const until = (what: string, check: () => Promise<boolean>, timeoutMs = 60_000) =>
  waitFor(what, check, timeoutMs);

function start(group: string, to: TopicNames, keyPrefix: string, horizonMs?: number) {
  return fx.startConsumer({
    topics: to,
    keyPrefix,
    groupId: group,
    config: horizonMs === undefined ? config : loadConfig({ dedupeHorizonMs: horizonMs }),
    limits: { sweeperIntervalMs: 500 },
    awaitJoin: false,
  });
}

/** What a member has: its stored state text, the ledger topic's entries and ClickHouse's rows. */
async function snapshot(userId: string) {
  await waitCaughtUp(conn, groupId, [topics.usage, topics.commands]);
  const stored = await readMember(redis, iso.keyPrefix, userId);
  const ledgerRecords = await readTopic(conn, topics.ledger, { idleMs: 1_500 });
  const entries = (await ledgerByUser(codec, ledgerRecords)).get(userId) ?? [];
  await until("ClickHouse has the member's ledger", async () => {
    const n = await chCount(
      `SELECT count() AS n FROM ledger_entries FINAL WHERE user_id = '${userId}'`,
    );
    return n === entries.length;
  });
  return {
    state: stored.state!,
    ledgerRecords: ledgerRecords.length,
    entries,
    chUsage: await chCount(
      `SELECT uniqExact(event_id) AS n FROM usage_events WHERE user_id = '${userId}'`,
    ),
  };
}

async function deleteKeys(prefix: string): Promise<void> {
  await deleteKeysUnder(redis, prefix);
}

beforeAll(async () => {
  await fx.topics();
  producer = await openProducer(topics);
  consumer = await start(groupId, topics, iso.keyPrefix);
  await consumer.joined;
  await fx.startSink({ limits: { maxBatchAgeMs: 200 } });
});

describe("the duplicate horizon on the real stack", () => {
  it("copies produced again after thousands of newer events change nothing, also after a rebuild", async () => {
    const now = Date.now();
    const user = "hz0";
    // 5,000 events over the 20 hours before now (usage reported late, all inside the horizon).
    const first = Array.from({ length: 5_000 }, (_, n) =>
      usage(user, n, now - 20 * HOUR_MS + n * 14_400),
    );
    await sendAll(producer, first);
    const before = await snapshot(user);
    expect(usageCauses(before.entries).size).toBe(5_000);
    expect(sumMicros(before.entries)).toBe(ledgerBalanceMicros(before.state));
    expect(before.chUsage).toBe(5_000);

    // The oldest 1,000, produced again as new records (a service replaying its outbox), hours
    // after their first copies and after 4,000 to 5,000 newer events of the member.
    await sendAll(producer, first.slice(0, 1_000));
    const after = await snapshot(user);
    expect(ledgerBalanceMicros(after.state)).toBe(ledgerBalanceMicros(before.state));
    expect(after.ledgerRecords).toBe(before.ledgerRecords);
    expect(after.entries).toEqual(before.entries);
    expect(after.chUsage).toBe(5_000);
    expect(
      await chCount(`SELECT count() AS n FROM ledger_entries FINAL WHERE user_id = '${user}'`),
    ).toBe(before.entries.length);

    // Redis lost and rebuilt from the ledger and the topics: the memory of the ids comes back.
    await consumer!.stop();
    consumer = null;
    await deleteKeys(iso.keyPrefix);
    const summary = await fx.rebuild();
    expect(summary.mismatches).toEqual([]);
    const rebuilt = (await readMember(redis, iso.keyPrefix, user)).state!;
    expect([...rebuilt.applied]).toEqual([...after.state.applied]);
    consumer = await start(groupId, topics, iso.keyPrefix);
    await consumer.joined;
    await sendAll(producer, first.slice(1_000, 2_000));
    const afterRebuild = await snapshot(user);
    expect(ledgerBalanceMicros(afterRebuild.state)).toBe(ledgerBalanceMicros(before.state));
    expect(afterRebuild.entries).toEqual(before.entries);
    expect(afterRebuild.chUsage).toBe(5_000);

    const letters = await readTopic(conn, topics.deadLetters, { idleMs: 1_000 });
    expect(letters.filter((l) => l.key === user)).toEqual([]);
  });

  it("dead-letters an event past the horizon as too_old and debits nothing", async () => {
    const user = "hz1";
    await producer.recordUsage(usage(user, 0, Date.now() - 60_000));
    const before = await snapshot(user);
    await producer.recordUsage(usage(user, 1, Date.now() - 25 * HOUR_MS));
    const after = await snapshot(user);
    expect(after.entries).toEqual(before.entries);
    expect(ledgerBalanceMicros(after.state)).toBe(ledgerBalanceMicros(before.state));
    const letters = await readTopic(conn, topics.deadLetters, { idleMs: 1_000 });
    const mine = letters.filter((l) => l.key === user);
    expect(mine.map((l) => l.headers["cf-reason"])).toEqual(["too_old"]);
  });

  it("a consumer stopped for several horizons applies every event accepted meanwhile; a copy within the horizon is still a duplicate", async () => {
    const HORIZON_MS = 2_000;
    const short = await fx.topics("short", { partitions: 2 });
    const shortGroup = iso.group("short");
    const shortPrefix = `${iso.keyPrefix}short:`;
    const p = await openProducer(short);
    try {
      // The group joins once and stops: what follows is accepted while no consumer runs.
      const first = await start(shortGroup, short, shortPrefix, HORIZON_MS);
      await first.joined;
      await first.stop();
      const user = "hs0";
      const sent: UsageInput[] = [];
      const startedAt = Date.now();
      let n = 0;
      while (Date.now() - startedAt < 4 * HORIZON_MS) {
        const u = usage(user, n++, Date.now());
        await p.recordUsage(u);
        sent.push(u);
        await new Promise((r) => setTimeout(r, 50));
      }
      // A copy of the last event, accepted well within its horizon.
      await p.recordUsage(sent.at(-1)!);
      // Several horizons later still, the consumer starts.
      await new Promise((r) => setTimeout(r, 2 * HORIZON_MS));
      const later = await start(shortGroup, short, shortPrefix, HORIZON_MS);
      try {
        await later.joined;
        await waitCaughtUp(conn, shortGroup, [short.usage]);
      } finally {
        await later.stop();
      }
      const letters = await readTopic(conn, short.deadLetters, { idleMs: 1_000 });
      expect(letters).toEqual([]);
      const entries = (await ledgerByUser(codec, await readTopic(conn, short.ledger))).get(user)!;
      // Every event debited once (ledgerByUser fails on an entry id with two contents, which a
      // second apply of the copy would make), and the ledger sums to the balance.
      expect(usageCauses(entries).size).toBe(sent.length);
      const state = (await readMember(redis, shortPrefix, user)).state!;
      expect(sumMicros(entries)).toBe(ledgerBalanceMicros(state));
    } finally {
      await p.close();
    }
  });
});
