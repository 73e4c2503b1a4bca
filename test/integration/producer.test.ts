// Goal: the producer library a feature service imports does what it promises against the real
// stack: events land keyed by user in the Confluent wire format and decode with the registry's
// schema; bad input is refused before Kafka with the field named; an event older than the
// duplicate horizon is refused `too_old`; a batch with one bad event writes nothing; a slow Kafka makes callers wait instead of growing memory; our schemas evolve
// under the registry's BACKWARD rule and old readers read new data.

import { type UsageInput, usageEventSchema, valueSubject } from "@creditflow/contracts";
import { DEFAULT_DEDUPE_HORIZON_MS } from "@creditflow/engine";
import { CreditProducer, ProducerError } from "@creditflow/producer";
import { SchemaRegistry, SchemaType } from "@kafkajs/confluent-schema-registry";
import { beforeAll, describe, expect, it } from "vitest";
import { fixture } from "../support/fixture.ts";
import { usageInput } from "../support/inputs.ts";

const fx = fixture(import.meta.url);
const { iso, urls, codec } = fx;
const topics = fx.topicNames();
const rateCard = fx.config.rateCard;
/** Events happen in the minute before the file started: well inside the duplicate horizon. */
const START_MS = Date.now() - 60_000;

/** Usage n (a chat step, in the minute before the file started) of one of seven users. */
function usage(n: number, user = `user-${n % 7}`) {
  return usageInput(`evt-${n}`, user, {
    taskId: `task-${Math.floor(n / 3)}`,
    inputTokens: 1000 + n,
    outputTokens: 200,
    occurredAt: START_MS + (n % 60) * 1000,
  });
}

/** Every record of a topic, read from the start with a throwaway group. */
async function readAll(topic: string, expected: number, timeoutMs = 20_000) {
  const records = await fx.readTopic(topic, { expected, timeoutMs });
  return records.map((r) => ({ key: r.key!, value: r.value!, partition: r.partition }));
}

const offsetsSum = (topic: string) => fx.topicSize(topic);

describe("producer library", () => {
  let producer: CreditProducer;

  beforeAll(async () => {
    // Not registered beforehand: the producer registers its own schemas.
    await fx.topics(undefined, { partitions: 6, register: false });
    producer = await fx.producer({ compression: "gzip" });
  });

  /** Expects `batch` refused with `code` naming `fields`, and the usage topic still at `before`. */
  async function expectBatchRefused(
    batch: UsageInput[],
    code: string,
    fields: string[],
    before: number,
  ) {
    const error = await producer.recordUsageBatch(batch).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProducerError);
    expect((error as ProducerError).code).toBe(code);
    expect((error as ProducerError).fields.map((f) => f.field)).toEqual(fields);
    await producer.flush();
    expect(await offsetsSum(topics.usage)).toBe(before);
  }

  it("sends events keyed by user that decode with the registry's schema", async () => {
    const sent = Array.from({ length: 50 }, (_, n) => usage(n));
    const acks = await Promise.all(sent.map((e) => producer.recordUsage(e)));
    expect(acks.map((a) => a.id)).toEqual(sent.map((e) => e.eventId));

    const records = await readAll(topics.usage, 50);
    expect(records).toHaveLength(50);
    // A fresh registry client knows nothing: it decodes by the schema id in each record.
    const registry = new SchemaRegistry({ host: urls.schemaRegistryUrl });
    const decoded = await Promise.all(records.map((r) => registry.decode(r.value)));
    const byId = new Map(decoded.map((d) => [d.eventId, d]));
    for (const e of sent) {
      expect(byId.get(e.eventId)).toMatchObject({
        userId: e.userId,
        feature: "chat",
        inputTokens: e.inputTokens,
        cachedInputTokens: 0,
        occurredAt: e.occurredAt,
        service: "test-service",
      });
    }
    // Keyed by user id: each record's key is the user of its own event.
    records.forEach((r, i) => {
      expect(r.key).toBe(decoded[i].userId);
    });
    // One user's events sit on one partition.
    const partitionsOfUser1 = new Set(
      records.filter((r) => r.key === "user-1").map((r) => r.partition),
    );
    expect(partitionsOfUser1.size).toBe(1);
  });

  it("refuses an invalid event before Kafka, naming the field", async () => {
    const before = await offsetsSum(topics.usage);
    const bad = [
      [{ ...usage(1000), inputTokens: -5 }, "inputTokens"],
      [{ ...usage(1001), feature: "teleport" }, "feature"],
      [{ ...usage(1002), userId: undefined }, "userId"],
      [{ ...usage(1003), eventId: "not an id" }, "eventId"],
    ] as const;
    for (const [input, field] of bad) {
      const error = await producer.recordUsage(input as never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ProducerError);
      expect((error as ProducerError).code).toBe("invalid_input");
      expect((error as ProducerError).fields.map((f) => f.field)).toEqual([field]);
    }
    await producer.flush();
    expect(await offsetsSum(topics.usage)).toBe(before);
  });

  it("refuses an event older than the duplicate horizon before Kafka: too_old naming occurredAt", async () => {
    expect(producer.dedupeHorizonMs).toBe(DEFAULT_DEDUPE_HORIZON_MS);
    const before = await offsetsSum(topics.usage);
    const tooOld = Date.now() - DEFAULT_DEDUPE_HORIZON_MS - 60_000;
    for (const occurredAt of [tooOld, new Date(tooOld).toISOString()]) {
      const error = await producer
        .recordUsage({ ...usage(1100), occurredAt })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ProducerError);
      expect(error).toMatchObject({ code: "too_old", retryable: false });
      expect((error as ProducerError).fields).toEqual([
        { field: "occurredAt", code: "too_old", message: expect.stringContaining("occurredAt") },
      ]);
    }
    const batch = [usage(1101), { ...usage(1102), occurredAt: tooOld }, usage(1103)];
    await expectBatchRefused(batch, "too_old", ["events.1.occurredAt"], before);

    // A producer with a shorter horizon refuses sooner; one out of range is refused at create.
    const hourly = await fx.producer({ compression: "gzip", dedupeHorizonMs: 60 * 60 * 1000 });
    const twoHoursAgo = Date.now() - 2 * 60 * 60 * 1000;
    await expect(
      hourly.recordUsage({ ...usage(1104), occurredAt: twoHoursAgo }),
    ).rejects.toMatchObject({ code: "too_old" });
    await hourly.close();
    await expect(
      CreditProducer.create({
        brokers: urls.kafkaBrokers,
        schemaRegistryUrl: urls.schemaRegistryUrl,
        service: "test-service",
        rateCard,
        topics,
        dedupeHorizonMs: 36 * 24 * 60 * 60 * 1000,
      }),
    ).rejects.toMatchObject({ code: "invalid_options", fields: [{ field: "dedupeHorizonMs" }] });
    expect(await offsetsSum(topics.usage)).toBe(before);
  });

  it("writes nothing from a batch with one bad event", async () => {
    const before = await offsetsSum(topics.usage);
    const batch = [usage(2000), usage(2001), { ...usage(2002), outputTokens: -1 }, usage(2003)];
    await expectBatchRefused(batch, "invalid_input", ["events.2.outputTokens"], before);

    const good = await producer.recordUsageBatch([usage(2000), usage(2001)]);
    expect(good).toHaveLength(2);
    expect(await offsetsSum(topics.usage)).toBe(before + 2);
  });

  it("makes callers wait when the pending bound is reached, then sends everything", async () => {
    const small = await fx.producer({
      compression: "gzip",
      limits: { maxPendingRecords: 20, maxBatchRecords: 5, lingerMs: 1 },
    });
    const before = await offsetsSum(topics.usage);
    await Promise.all(Array.from({ length: 300 }, (_, n) => small.recordUsage(usage(3000 + n))));
    expect(small.stats.waitedForRoom).toBeGreaterThan(0);
    expect(small.stats.sent).toBe(300);
    expect(small.stats.batches).toBeGreaterThanOrEqual(300 / 5);
    await small.close();
    expect(await offsetsSum(topics.usage)).toBe(before + 300);
    await expect(small.recordUsage(usage(4000))).rejects.toMatchObject({ code: "closed" });
  });

  it("sends credit commands on the commands topic", async () => {
    await producer.sendCommand(
      {
        type: "subscription_start",
        id: "cmd-1",
        userId: "user-1",
        atMs: Date.now(),
        tierId: "plus",
        billing: "monthly",
      },
      "admin:test",
    );
    const [record] = await readAll(topics.commands, 1);
    const decoded = await codec.decode("command", record!.value);
    expect(decoded).toMatchObject({
      ok: true,
      value: {
        commandId: "cmd-1",
        issuedBy: "admin:test",
        command: { "creditflow.v1.SubscriptionStart": { tierId: "plus" } },
      },
    });
  });
});

describe("schema evolution under the registry's BACKWARD rule", () => {
  const subject = valueSubject(`t_${iso.id}_evolve`);
  const base = JSON.parse(usageEventSchema.raw);
  const withField = (field: object) => JSON.stringify({ ...base, fields: [...base.fields, field] });
  const registry = new SchemaRegistry({ host: urls.schemaRegistryUrl });

  it("registers a compatible change, refuses an incompatible one, and old readers read new data", async () => {
    const v1 = await registry.register(
      { type: SchemaType.AVRO, schema: usageEventSchema.raw },
      { subject, updateConfig: false },
    );
    const v2 = await registry.register(
      {
        type: SchemaType.AVRO,
        schema: withField({ name: "region", type: "string", default: "eu" }),
      },
      { subject, updateConfig: false },
    );
    expect(v2.id).not.toBe(v1.id);
    await expect(
      registry.register(
        { type: SchemaType.AVRO, schema: withField({ name: "priority", type: "int" }) },
        { subject, updateConfig: false },
      ),
    ).rejects.toMatchObject({ status: 409 });

    // Data written by a newer producer with v2 ...
    const written = await registry.encode(v2.id, {
      ...usage(1),
      taskKind: null,
      cachedInputTokens: 7,
      service: "newer-service",
      region: "us",
    });
    // ... is read by a consumer built on our (older) schema: the extra field is skipped.
    const decoded = await codec.decode("usage", written);
    expect(decoded).toEqual({
      ok: true,
      schemaId: v2.id,
      value: expect.objectContaining({
        eventId: "evt-1",
        cachedInputTokens: 7,
        service: "newer-service",
      }),
    });
    expect((decoded as { value: object }).value).not.toHaveProperty("region");
  });

  it("classifies bytes it cannot read: bad frame, unknown schema id, truncated body", async () => {
    expect(await codec.decode("usage", Buffer.from("hello"))).toMatchObject({
      ok: false,
      reason: "bad_frame",
    });
    expect(await codec.decode("usage", Buffer.from([0, 0x7f, 0, 0, 1, 2]))).toMatchObject({
      ok: false,
      reason: "unknown_schema",
    });
    const { id } = await registry.register(
      { type: SchemaType.AVRO, schema: usageEventSchema.raw },
      { subject, updateConfig: false },
    );
    const good = await registry.encode(id, {
      ...usage(2),
      taskKind: null,
      cachedInputTokens: 0,
      service: "s",
    });
    expect(await codec.decode("usage", good.subarray(0, 12))).toMatchObject({
      ok: false,
      reason: "undecodable",
    });
  });
});
