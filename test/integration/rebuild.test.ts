// Goal: a lost Redis is rebuilt to the exact balances. The real consumer and history sink run a
// mixed workload (bonus grants, one forfeited by the sweeper while idle, subscriptions with an
// upgrade, a cancel and refused commands, a migration, an overdraft, an event sent twice); once
// ClickHouse holds every ledger entry, this file's member keys are deleted and `rebuildRedis`
// replays Kafka at the ledger's times: every member's balance view is what it was, field by
// field, its ledger sums verify, its deadline is back in the index, and a consumer reading the
// topics again from the start applies nothing twice.
//
// Second case, the one a chaos run found: Redis is lost while a consumer's unit sits in the
// outboxes, applied and not committed, its relay cut between two sends (one member's entries
// relayed, the next member's first entry relayed and its second not, a third member's not at
// all). The rebuild replays each member up to its last relayed record, owes the cut entry, and the
// consumer resuming from its committed offset makes every entry exactly once: no entry id twice
// with different content, each balance = the sum of its ledger entries = the engine's.

import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { RunningConsumer } from "@creditflow/consumer";
import {
  type BalanceView,
  balanceView,
  type CreditCommand,
  DAY_MS,
  type EngineInput,
  ledgerBalanceMicros,
  type MemberState,
  nextDeadlineMs,
} from "@creditflow/engine";
import {
  deleteKeysUnder,
  keySpace,
  MemberReader,
  offsetField,
  outboxValues,
} from "@creditflow/member-store";
import type { CreditProducer } from "@creditflow/producer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  replayMember,
  type StoredMember,
  sumMicros,
} from "../../services/consumer/testing/harness.ts";
import { fixture } from "../support/fixture.ts";
import { bonusGrant, remember, usageEvent, usageInput } from "../support/inputs.ts";
import { waitFor } from "../support/wait.ts";

const LATENESS_MS = 1_500;
const fx = fixture(import.meta.url, { plans: { allowedLatenessMs: LATENESS_MS } });
const { iso, config, conn, groupId } = fx;
const topics = fx.topicNames();
const users = ["rb0", "rb1", "rb2", "rb3", "rb4"];

let producer: CreditProducer;
let consumer: RunningConsumer | null = null;
const redis = fx.redis;
const ch = fx.clickhouseIn();

function startTestConsumer(group: string): Promise<RunningConsumer> {
  return fx.startConsumer({ groupId: group, limits: { sweeperIntervalMs: 250 }, awaitJoin: false });
}

const rebuild = () => fx.rebuild();

const until = (what: string, check: () => Promise<boolean>, timeoutMs = 30_000) =>
  waitFor(what, check, timeoutMs);

/**
 * A state with its memory of recent ids as a set and without its clock. A record that leaves no
 * ledger entry (a refusal, a duplicate, a cancel) has no recorded processing time: the rebuild
 * applies it at the time of the record before it in its partition, so its place among the other
 * partition's records, and the clock of a member whose last input was such a record, are not
 * recorded anywhere (see rebuild.ts). The clock is checked apart: never later than the original.
 */
function comparable(state: MemberState): unknown {
  const applied = [...state.applied].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { ...state, applied, appliedIdHashes: null, clockMs: null };
}

/** Deletes every key of this file (and only of this file): a Redis loss. */
async function loseRedis(): Promise<number> {
  return deleteKeysUnder(redis, iso.keyPrefix);
}

beforeAll(async () => {
  await fx.topics();
  producer = await fx.producer();
  consumer = await startTestConsumer(groupId);
  await consumer.joined;
  await fx.startSink({ limits: { maxBatchAgeMs: 200 } });
});

describe("rebuild of Redis from the ledger and Kafka", () => {
  it("restores every member's balance view exactly, verified against the ledger sums", async () => {
    const t0 = Date.now();
    const base = (user: string, n: string) => ({ id: `${user}-${n}`, userId: user, atMs: t0 });
    let task = 0;
    const usage = (user: string, n: number, outputTokens = 2_000, eventId = `${user}-e${n}`) =>
      producer.recordUsage({
        eventId,
        userId: user,
        taskId: `${user}-t${task++ % 3}`,
        feature: n % 2 === 0 ? "chat" : "code",
        model: "kimi-k2",
        inputTokens: 10_000 + n,
        outputTokens,
        occurredAt: Date.now(),
      });
    const bonus = (user: string, n: string, credits: number, expiresAtMs: number) =>
      producer.sendCommand(
        bonusGrant({
          ...base(user, n),
          amountMicros: credits * 1_000_000,
          effectiveFromMs: t0 - 1_000,
          expiresAtMs,
        }),
        "test",
      );
    const command = (c: CreditCommand) => producer.sendCommand(c, "test");
    const subscribe = (user: string, tierId: string, billing: "monthly" | "annual") =>
      command({ ...base(user, "sub"), type: "subscription_start", tierId, billing });

    // rb0: a short bonus, partly spent, forfeited by the sweeper while the member is idle.
    const shortExpiryMs = t0 + 4_000;
    await bonus("rb0", "promo", 3, shortExpiryMs);
    await usage("rb0", 0);
    // rb1: a subscription, usage, an event sent twice.
    await subscribe("rb1", "plus", "monthly");
    for (let n = 0; n < 5; n++) await usage("rb1", n);
    await usage("rb1", 2); // the same event id again: debited once
    // rb2: a 30-day bonus, a subscription upgraded then cancelled, a refused change after it.
    await bonus("rb2", "promo", 5, t0 + 30 * DAY_MS);
    await usage("rb2", 0);
    await subscribe("rb2", "plus", "annual");
    await usage("rb2", 1);
    await command({ ...base("rb2", "up"), type: "subscription_change", tierId: "pro" });
    await usage("rb2", 2);
    await command({ ...base("rb2", "cancel"), type: "subscription_cancel" });
    await command({ ...base("rb2", "late-up"), type: "subscription_change", tierId: "ultra" });
    await usage("rb2", 3);
    // rb3: a migration, usage, a refused change (no subscription).
    await command({
      ...base("rb3", "mig"),
      type: "migrate_legacy",
      unusedUses: { agent: 3, ppt: 2 },
    });
    for (let n = 0; n < 3; n++) await usage("rb3", n);
    await command({ ...base("rb3", "change"), type: "subscription_change", tierId: "pro" });
    // rb4: free tier only, a task that overdraws (shortfall recorded, forgiven).
    await usage("rb4", 0);
    await usage("rb4", 1, 3_000_000);
    await usage("rb4", 2);

    await fx.caughtUp([topics.usage, topics.commands]);
    // The sweeper forfeits rb0's bonus once expiry + lateness has passed.
    await until(
      "the sweeper to forfeit rb0's bonus",
      async () => {
        const m = await fx.member("rb0");
        return !m.state!.grants.some((g) => g.cls === "bonus");
      },
      shortExpiryMs + LATENESS_MS + 15_000 - Date.now(),
    );

    // History holds every ledger entry the consumer relayed.
    const ledger = await fx.ledger(topics, { idleMs: 1_500 });
    const expectedEntries = [...ledger.values()].reduce((n, l) => n + l.length, 0);
    expect(ledger.get("rb0")!.some((e) => e.kind === "expire" && e.sourceTopic === null)).toBe(
      true,
    );
    expect(ledger.get("rb4")!.some((e) => e.kind === "overdraft")).toBe(true);
    await until("history to hold every ledger entry", async () => {
      const rs = await ch.query({
        query: "SELECT count() AS n FROM ledger_entries FINAL",
        format: "JSONEachRow",
      });
      const [row] = await rs.json<{ n: string }>();
      return Number(row?.n) === expectedEntries;
    });

    // What each member sees now, at one fixed instant.
    const viewAtMs = Date.now();
    const before = new Map<string, { member: StoredMember; view: BalanceView }>();
    for (const user of users) {
      const member = await fx.member(user);
      expect(member.state).not.toBeNull();
      expect(sumMicros(ledger.get(user))).toBe(ledgerBalanceMicros(member.state!));
      before.set(user, { member, view: balanceView(member.state!, { config, nowMs: viewAtMs }) });
    }

    // Redis is lost while the consumer is down.
    await consumer!.stop();
    consumer = null;
    expect(await loseRedis()).toBeGreaterThan(0);
    expect((await fx.member("rb1")).state).toBeNull();

    const summary = await rebuild();
    expect(summary.mismatches).toEqual([]);
    expect(summary.members).toBe(users.length);
    expect(summary.written).toBe(users.length);
    expect(summary.present).toBe(0);
    expect(summary.timeSteps).toBeGreaterThanOrEqual(1);
    // Every record of the topics belongs to one of the members (the duplicate included).
    const [usageEnds, commandEnds] = await Promise.all(
      [topics.usage, topics.commands].map((t) => fx.topicSize(t)),
    );
    expect(summary.recordsReplayed).toBe(usageEnds! + commandEnds!);

    const rebuilt = new Map<string, string>();
    for (const user of users) {
      const was = before.get(user)!;
      const now = await fx.member(user);
      expect(now.state, user).not.toBeNull();
      const view = balanceView(now.state!, { config, nowMs: viewAtMs });
      for (const field of Object.keys(was.view) as (keyof BalanceView)[]) {
        expect(view[field], `${user}: ${field}`).toEqual(was.view[field]);
      }
      expect(Object.keys(view).sort()).toEqual(Object.keys(was.view).sort());
      // Stronger than the view: the very state the consumer held (see comparable), and its offsets.
      expect(comparable(now.state!), `${user}: state`).toEqual(comparable(was.member.state!));
      expect(now.state!.clockMs, `${user}: clock`).toBeLessThanOrEqual(was.member.state!.clockMs);
      rebuilt.set(user, now.stateText!);
      expect(now.offsets, `${user}: offsets`).toEqual(was.member.offsets);
      expect(now.outboxLength).toBe(0);
      expect(ledgerBalanceMicros(now.state!)).toBe(sumMicros(ledger.get(user)));
      const deadline = await new MemberReader(redis, keySpace(iso.keyPrefix)).deadline(user);
      const expected = nextDeadlineMs(now.state!, { config });
      expect(deadline, `${user}: deadline`).toBe(expected);
    }

    // A second run leaves the rebuilt members alone.
    const again = await rebuild();
    expect(again.written).toBe(0);
    expect(again.present).toBe(users.length);
    expect(again.mismatches).toEqual([]);

    // A consumer that reads both topics again from the start (a new group) applies nothing twice,
    // and a new event is debited once on top of the rebuilt state.
    const rereader = iso.group("rereader");
    consumer = await startTestConsumer(rereader);
    await fx.caughtUp([topics.usage, topics.commands], rereader);
    for (const user of users) {
      const now = await fx.member(user);
      expect(now.stateText, `${user}: after a full re-read`).toBe(rebuilt.get(user));
    }
    const balanceBefore = ledgerBalanceMicros(before.get("rb1")!.member.state!);
    await usage("rb1", 9);
    await fx.caughtUp([topics.usage], rereader);
    const after = await fx.member("rb1");
    expect(ledgerBalanceMicros(after.state!)).toBeLessThan(balanceBefore);
    expect(after.version).toBe(2);
  });
});

describe("rebuild after a relay cut between two sends", () => {
  const cutTopics = fx.topicNames("cut");
  const cutDatabase = fx.ownDatabase(`${iso.database}_cut`);
  const cutPrefix = `${iso.keyPrefix}cut:`;
  const cutGroup = iso.group("cut-consumer");
  const [A, B, C] = ["cutA", "cutB", "cutC"] as const;
  const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
  let cutProducer: CreditProducer;
  let cutConsumer: RunningConsumer | null = null;
  let child: ChildProcess | null = null;

  const startCutConsumer = () =>
    fx.startConsumer({
      topics: cutTopics,
      keyPrefix: cutPrefix,
      groupId: cutGroup,
      limits: { sweeperIntervalMs: 250 },
      awaitJoin: false,
    });

  /** A consumer process SIGKILLed after the write of its first unit: nothing relayed. */
  function killedAfterWrite(): Promise<NodeJS.Signals | null> {
    child = spawn(process.execPath, ["services/consumer/src/main.ts"], {
      cwd: repoRoot,
      env: {
        ...fx.serviceEnv(),
        CF_TOPIC_PREFIX: fx.topicPrefix("cut"),
        CF_KEY_PREFIX: cutPrefix,
        CF_CONSUMER_GROUP: cutGroup,
        CF_CONSUMER_SWEEPER: "off",
        CF_CONSUMER_LIMITS: JSON.stringify({ sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500 }),
        CF_FAULT_KILL: "1:after_write",
      },
      stdio: "ignore",
    });
    return new Promise((resolve) => child!.on("exit", (_code, signal) => resolve(signal)));
  }

  beforeAll(async () => {
    // One partition each: the unit holds every member's records, in send order.
    await fx.topics("cut", { partitions: 1 });
    cutProducer = await fx.producer({ topics: cutTopics });
  });

  afterAll(async () => {
    child?.kill("SIGKILL");
  });

  it("replays each member up to its last relayed record, owes the cut entry, and the consumer makes every entry once", async () => {
    const t0 = Date.now();
    const sent = new Map<string, EngineInput[]>();
    const grant = async (userId: string, amountMicros: number) => {
      const c = bonusGrant({
        id: `${userId}-promo`,
        userId,
        amountMicros,
        atMs: t0,
        effectiveFromMs: t0 - 1_000,
        expiresAtMs: t0 + 30 * DAY_MS,
      });
      remember(sent, c);
      await cutProducer.sendCommand(c, "test");
    };
    const spend = async (user: string, n: number, outputTokens = 2_000) => {
      const u = usageInput(`${user}-e${n}`, user, {
        taskId: `${user}-t${n}`,
        inputTokens: 10_000,
        outputTokens,
      });
      remember(sent, usageEvent(u, config.rateCard));
      await cutProducer.recordUsage(u);
    };

    // Applied, relayed and committed.
    cutConsumer = await startCutConsumer();
    await cutConsumer.joined;
    // The sink after the consumer: the consumer creates the ledger topic.
    await fx.startSink({
      database: cutDatabase,
      topics: cutTopics,
      groupId: iso.group("cut-sink"),
      limits: { maxBatchAgeMs: 200 },
    });
    // A and C spend inside their bonus; B's bonus is small.
    for (const user of [A, B, C]) {
      await grant(user, user === B ? 500_000 : 5_000_000);
      await spend(user, 0);
    }
    await fx.caughtUp([cutTopics.usage, cutTopics.commands], cutGroup);
    await cutConsumer.stop();
    cutConsumer = null;

    // One unit: applied in Redis by a consumer killed before its relay; nothing committed.
    // B's first event spends more than B's bonus has left: two entries, #0 and #1.
    await spend(A, 1);
    await spend(B, 1, 50_000);
    await spend(C, 1);
    await spend(A, 2);
    await spend(B, 2);
    await spend(C, 2);
    expect(await killedAfterWrite()).toBe("SIGKILL");
    child = null;
    const outbox = async (user: string) => {
      const m = await new MemberReader(redis, keySpace(cutPrefix)).member(user);
      // One unit, one write per member: one outbox write, its entries in order.
      expect(m.outbox).toHaveLength(1);
      return outboxValues(m.outbox[0]!).map((value) => ({ value }));
    };
    const [outA, outB, outC] = await Promise.all([A, B, C].map(outbox));
    expect([outA!.length, outB!.length, outC!.length]).toEqual([2, 3, 2]);

    // The unit's relay as far as its first send went (the consumer relays members in unit order):
    // all of A's entries and B's first; the send boundary fell inside B's first event.
    const relayed = [...outA!, outB![0]!];
    const kafkaOut = conn.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await kafkaOut.connect();
    await kafkaOut.send({
      topic: cutTopics.ledger,
      acks: -1,
      messages: relayed.map((e, i) => ({ key: i < outA!.length ? A : B, value: e.value })),
    });
    await kafkaOut.disconnect();
    const relayedLedger = await fx.ledger(cutTopics, { idleMs: 1_500 });
    const relayedCount = [...relayedLedger.values()].reduce((n, l) => n + l.length, 0);
    expect(relayedLedger.get(B)!.map((e) => e.entryId)).toContain(`${B}-e1#0`);
    expect(relayedLedger.get(B)!.map((e) => e.entryId)).not.toContain(`${B}-e1#1`);
    await until("history to hold every relayed ledger entry", async () => {
      const rs = await ch.query({
        query: `SELECT count() AS n FROM ${cutDatabase}.ledger_entries FINAL`,
        format: "JSONEachRow",
      });
      const [row] = await rs.json<{ n: string }>();
      return Number(row?.n) === relayedCount;
    });

    // Redis is lost (with the outboxes), the consumer still down.
    expect(await deleteKeysUnder(redis, cutPrefix)).toBeGreaterThan(0);

    const summary = await fx.rebuild({
      database: cutDatabase,
      topics: cutTopics,
      keyPrefix: cutPrefix,
      consumerGroupId: cutGroup,
    });
    expect(summary.mismatches).toEqual([]);
    expect(summary.written).toBe(3);
    // The rebuild reads the partition up to A2, its last record with relayed entries: C1 is read
    // and left to the consumer (after C's last relayed record, above the commit); B2 and C2 come
    // after A2 and are not read.
    expect(summary.leftToConsumer).toBe(1);
    expect(summary.owedEntries).toBe(1);
    // Usage offsets: A, B, C's e0 at 0-2; the unit's A1 3, B1 4, C1 5, A2 6, B2 7, C2 8.
    const rebuilt = Object.fromEntries(
      await Promise.all([A, B, C].map(async (u) => [u, await fx.member(u, cutPrefix)])),
    ) as Record<string, StoredMember>;
    const usageField = offsetField(cutTopics.usage, 0);
    expect(rebuilt[A]!.offsets[usageField]).toBe("6");
    expect(rebuilt[B]!.offsets[usageField]).toBe("4");
    expect(rebuilt[C]!.offsets[usageField]).toBe("2");
    expect([A, B, C].map((u) => rebuilt[u]!.outboxLength)).toEqual([0, 1, 0]);
    // B is due at once: the sweeper relays its outbox even if no record of B came again.
    const dueB = await new MemberReader(redis, keySpace(cutPrefix)).deadline(B);
    expect(dueB).not.toBeNull();
    expect(dueB!).toBeLessThanOrEqual(Date.now());

    // The consumer resumes from its committed offset.
    cutConsumer = await startCutConsumer();
    await fx.caughtUp([cutTopics.usage, cutTopics.commands], cutGroup);
    await until("every outbox relayed", async () => {
      for (const user of [A, B, C])
        if ((await fx.member(user, cutPrefix)).outboxLength > 0) return false;
      return true;
    });
    // ledgerByUser throws on an entry id relayed twice with different content.
    const ledger = await fx.ledger(cutTopics, { idleMs: 1_500 });
    for (const user of [A, B, C]) {
      const member = await fx.member(user, cutPrefix);
      const entries = ledger.get(user)!;
      const ids = entries.map((e) => e.entryId);
      for (let n = 0; n < 3; n++) expect(ids, `${user}-e${n}`).toContain(`${user}-e${n}#0`);
      expect(ledgerBalanceMicros(member.state!), user).toBe(sumMicros(entries));
      const engine = replayMember(user, sent.get(user)!, config, Date.now());
      expect(ledgerBalanceMicros(member.state!), `${user}: as the engine`).toBe(
        ledgerBalanceMicros(engine!),
      );
    }
    expect(ledger.get(B)!.map((e) => e.entryId)).toContain(`${B}-e1#1`);
  });
});
