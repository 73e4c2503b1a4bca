// Goal: the deduction consumer against the real stack debits exactly as the engine says. Events
// sent with the producer library are debited bonus first, then subscription; Redis ends equal to
// the engine applied to the same records in offset order; each member's ledger entries read back
// from the ledger topic (deduplicated by id) sum to the balance; an event id sent three times
// debits once; malformed records of every kind land in the dead-letter topic with their reason
// while the valid records around them are applied.

import type { RunningConsumer } from "@creditflow/consumer";
import {
  type TopicNames,
  type UsageEventRecord,
  type UsageInput,
  usageEventFromRecord,
} from "@creditflow/contracts";
import { DAY_MS, type EngineInput, ledgerBalanceMicros } from "@creditflow/engine";
import type { CreditProducer } from "@creditflow/producer";
import { beforeAll, describe, expect, it } from "vitest";
import {
  replayMember,
  sumMicros,
  withoutHorizonTimes,
} from "../../services/consumer/testing/harness.ts";
import { fixture } from "../support/fixture.ts";
import { bonusGrant, remember, usageEvent, usageInput } from "../support/inputs.ts";

const fx = fixture(import.meta.url, { partitions: 6 });
const { config, codec } = fx;
/** The consumer's processing clock, pinned so the engine replay sees the same time. */
const NOW_MS = fx.clock.nowMs;

let topics: TopicNames;
let producer: CreditProducer;
let consumer: RunningConsumer;
/** What each user was sent, in send order (one producer, one partition per user). */
const sentCommands = new Map<string, EngineInput[]>();
const sentUsage = new Map<string, EngineInput[]>();

/** Usage n of a user, a minute before NOW_MS; four steps to a task. */
function usageOf(user: string, n: number, eventId = `${user}-e${n}`) {
  return usageInput(eventId, user, {
    taskId: `${user}-t${Math.floor(n / 4)}`,
    inputTokens: 1000 + n,
    outputTokens: 200,
    occurredAt: NOW_MS - 60_000 + n,
  });
}
const asEvent = (u: UsageInput) => usageEvent(u, config.rateCard);

beforeAll(async () => {
  topics = await fx.topics();
  producer = await fx.producer();
  consumer = await fx.startConsumer({
    clock: fx.clock.now,
    metricsPort: 0,
    limits: { batchRecords: 50 },
  });
});

describe("deduction consumer", () => {
  const users = Array.from({ length: 8 }, (_, i) => `cu${i}`);
  /** Users 0..3 hold a 0.2-credit trial bonus; the usage spends it and then the free allowance. */
  const bonusUsers = users.slice(0, 4);

  it("debits bonus first, then subscription, exactly as the engine; the ledger sums to the balance", async () => {
    for (const user of bonusUsers) {
      const grant = bonusGrant({
        id: `${user}-trial`,
        userId: user,
        source: "trial",
        amountMicros: 200_000,
        atMs: NOW_MS - 120_000,
        expiresAtMs: NOW_MS + 7 * DAY_MS,
      });
      await producer.sendCommand(grant, "test");
      remember(sentCommands, grant);
    }
    await fx.caughtUp([topics.commands]);
    const sends = [];
    for (let n = 0; n < 20; n++) {
      for (const user of users) {
        const u = usageOf(user, n);
        remember(sentUsage, asEvent(u));
        sends.push(producer.recordUsage(u));
      }
    }
    await Promise.all(sends);
    await fx.caughtUp([topics.usage, topics.commands]);

    const ledger = await fx.ledger(topics);
    for (const user of users) {
      const inputs = [...(sentCommands.get(user) ?? []), ...(sentUsage.get(user) ?? [])];
      const expected = replayMember(user, inputs, config, NOW_MS)!;
      const stored = await fx.member(user);
      // Redis holds exactly the engine's state for the same records in offset order (but for
      // the ids' horizon times: the consumer takes them from Kafka's timestamps).
      expect(withoutHorizonTimes(stored.state!)).toEqual(withoutHorizonTimes(expected));
      expect(stored.outboxLength).toBe(0);
      // The ledger read back from Kafka sums to the balance.
      const entries = ledger.get(user) ?? [];
      expect(sumMicros(entries)).toBe(ledgerBalanceMicros(stored.state!));
      expect(entries.filter((e) => e.kind === "debit").length).toBeGreaterThanOrEqual(20);
      for (const e of entries) {
        if (e.kind === "debit") {
          expect(e.sourceTopic).toBe(topics.usage);
          expect(e.sourceOffset).not.toBeNull();
        }
      }
      const debits = entries.filter((e) => e.kind === "debit");
      if (bonusUsers.includes(user)) {
        // Bonus before subscription: every bonus debit precedes the first subscription debit,
        // and the bonus is spent to zero.
        const firstSub = debits.findIndex((e) => e.grantClass === "subscription");
        const lastBonus = debits.map((e) => e.grantClass).lastIndexOf("bonus");
        expect(firstSub).toBeGreaterThan(0);
        expect(lastBonus).toBeLessThan(firstSub + 1);
        expect(sumMicros(debits.filter((e) => e.grantClass === "bonus"))).toBe(-200_000);
        const bonus = stored.state!.grants.find((g) => g.cls === "bonus")!;
        expect(bonus.remainingMicros).toBe(0);
      } else {
        expect(debits.every((e) => e.grantClass === "subscription")).toBe(true);
      }
    }
  });

  it("debits an event id sent three times once", async () => {
    const user = "cdup";
    const before = replayMember(user, [], config, NOW_MS);
    expect(before).toBeNull();
    const first = usageOf(user, 0);
    await producer.recordUsage(usageOf(user, 1, "cdup-warm"));
    for (let i = 0; i < 3; i++) await producer.recordUsage(first);
    await fx.caughtUp([topics.usage]);
    const stored = await fx.member(user);
    const once = replayMember(
      user,
      [asEvent(usageOf(user, 1, "cdup-warm")), asEvent(first)],
      config,
      NOW_MS,
    )!;
    expect(ledgerBalanceMicros(stored.state!)).toBe(ledgerBalanceMicros(once));
    const ledger = await fx.ledger(topics);
    const entries = ledger.get(user) ?? [];
    expect(entries.filter((e) => e.entryId.startsWith(`${first.eventId}#`))).toHaveLength(1);
    expect(sumMicros(entries)).toBe(ledgerBalanceMicros(stored.state!));
    const text = await fetch(`http://127.0.0.1:${consumer.metricsPort}/metrics`).then((r) =>
      r.text(),
    );
    expect(text).toMatch(/cf_consumer_records_total\{topic="[^"]+",result="duplicate"\} 2/);
  });

  it("dead-letters malformed records of every kind with their reason and applies the valid ones around them", async () => {
    const kafkaProducer = fx.conn.kafka.producer();
    await kafkaProducer.connect();
    const user = "cmix";
    const valid = (n: number): UsageEventRecord => ({
      eventId: `cmix-e${n}`,
      userId: user,
      taskId: "cmix-t",
      feature: "chat",
      taskKind: null,
      model: "kimi-k2",
      inputTokens: 500,
      outputTokens: 100,
      cachedInputTokens: 0,
      occurredAt: NOW_MS - 1_000,
      service: "raw",
    });
    const goodBytes = codec.encode("usage", valid(0));
    const unknownSchema = Buffer.from(goodBytes);
    unknownSchema.writeInt32BE(0x7ffffff0, 1);
    const bad: Array<[string, Buffer, string]> = [
      ["random bytes", Buffer.from([7, 1, 2, 3, 4, 5, 6, 7, 8, 9]), "bad_frame"],
      ["wrong magic byte", Buffer.concat([Buffer.from([1]), goodBytes.subarray(1)]), "bad_frame"],
      ["unknown schema id", unknownSchema, "unknown_schema"],
      ["truncated avro", goodBytes.subarray(0, 12), "undecodable"],
      [
        "negative tokens",
        codec.encode("usage", { ...valid(90), inputTokens: -5 }),
        "invalid_field",
      ],
      [
        "unknown feature",
        codec.encode("usage", { ...valid(91), feature: "teleport" }),
        "unknown_feature",
      ],
      ["unknown model", codec.encode("usage", { ...valid(92), model: "gpt-0" }), "unknown_model"],
    ];
    const messages = [{ key: user, value: codec.encode("usage", valid(1)) }];
    for (const [, value] of bad) messages.push({ key: user, value });
    messages.push({ key: "", value: codec.encode("usage", { ...valid(93), userId: "" }) });
    messages.push({ key: user, value: codec.encode("usage", valid(2)) });
    await kafkaProducer.send({ topic: topics.usage, messages });
    await kafkaProducer.disconnect();
    await fx.caughtUp([topics.usage]);

    const letters = await fx.readTopic(topics.deadLetters, { expected: bad.length + 1 });
    const reasons = letters.map((l) => l.headers["cf-reason"]).sort();
    expect(reasons).toEqual([...bad.map((b) => b[2]), "missing_user"].sort());
    for (const l of letters) {
      expect(l.headers["cf-source-topic"]).toBe(topics.usage);
      expect(Number(l.headers["cf-source-partition"])).toBeGreaterThanOrEqual(0);
      expect(Number(l.headers["cf-source-offset"])).toBeGreaterThanOrEqual(0);
      expect(l.headers["cf-detail"]?.length).toBeGreaterThan(0);
    }
    const negative = letters.find((l) => l.headers["cf-detail"]?.includes("inputTokens"));
    expect(negative?.headers["cf-reason"]).toBe("invalid_field");
    // The original bytes travel unchanged.
    const random = letters.find((l) => l.value?.[0] === 7);
    expect(random?.value).toEqual(Buffer.from([7, 1, 2, 3, 4, 5, 6, 7, 8, 9]));

    const stored = await fx.member(user);
    const expected = replayMember(
      user,
      [usageEventFromRecord(valid(1)), usageEventFromRecord(valid(2))],
      config,
      NOW_MS,
    )!;
    expect(withoutHorizonTimes(stored.state!)).toEqual(withoutHorizonTimes(expected));
    const text = await fetch(`http://127.0.0.1:${consumer.metricsPort}/metrics`).then((r) =>
      r.text(),
    );
    expect(text).toContain('cf_consumer_dead_letters_total{reason="unknown_schema"} 1');
    const health = await fetch(`http://127.0.0.1:${consumer.metricsPort}/healthz`);
    expect(health.status).toBe(200);
  });
});
