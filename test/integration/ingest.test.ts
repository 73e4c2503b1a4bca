// Goal: the HTTP ingest keeps its promises against the real Kafka and registry: 202 only once
// the broker acknowledged (the record is then on the topic with the same id), 401 without a
// valid service token, 400 naming the field (`too_old` for an event older than the duplicate
// horizon), 413 for too many events or too large a body, 415 for a body that is not JSON, and a
// batch with one bad event writes nothing. A batch resent after its 202 is answered as the first
// time and debited once by the real deduction consumer.

import {
  DEFAULT_DEDUPE_HORIZON_MS,
  type EngineInput,
  ledgerBalanceMicros,
} from "@creditflow/engine";
import { buildIngest, type Ingest, IngestOptionError } from "@creditflow/ingest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { replayMember } from "../../services/consumer/testing/harness.ts";
import { fixture } from "../support/fixture.ts";
import { usageEvent, usageInput } from "../support/inputs.ts";

const fx = fixture(import.meta.url, { partitions: 3, nowMs: Date.now() });
const { urls, config } = fx;
const topics = fx.topicNames();
const rateCard = config.rateCard;
const AGENT_SECRET = "agent-secret-0123456789";
const CHAT_SECRET = "chat-secret-0123456789";
const auth = { authorization: `Bearer ${AGENT_SECRET}` };
/** The consumer's processing clock, pinned so the engine replay sees the same time. */
const NOW_MS = fx.clock.nowMs;
/** Events happen in the minute before NOW_MS: well inside the duplicate horizon. */
const START_MS = NOW_MS - 60_000;

/** Usage n (a code step, in the minute before NOW_MS) of one of five users. */
function usage(n: number, user = `user-${n % 5}`) {
  return usageInput(`evt-${n}`, user, {
    taskId: `task-${Math.floor(n / 3)}`,
    feature: "code",
    inputTokens: 2000 + n,
    outputTokens: 300,
    occurredAt: new Date(START_MS + (n % 60) * 1000).toISOString(),
  });
}

const highWaterMarks = (topic: string) => fx.topicSize(topic);

/** The decoded usage records of a topic, read from the start with a throwaway group. */
async function readUsage(expected: number, timeoutMs = 20_000) {
  const records = await fx.readTopic(topics.usage, { expected, timeoutMs });
  const out: Array<{ key: string; value: Record<string, unknown> }> = [];
  for (const record of records) {
    const decoded = await fx.codec.decode("usage", record.value);
    if (!decoded.ok) throw new Error(`undecodable record: ${decoded.detail}`);
    out.push({ key: record.key!, value: decoded.value as Record<string, unknown> });
  }
  return out;
}

describe("HTTP ingest", () => {
  let ingest: Ingest;
  const post = (payload: unknown, headers: Record<string, string> = auth) =>
    ingest.app.inject({ method: "POST", url: "/v1/usage", headers, payload: payload as never });

  beforeAll(async () => {
    await fx.topics();
    ingest = await buildIngest({
      brokers: urls.kafkaBrokers,
      schemaRegistryUrl: urls.schemaRegistryUrl,
      rateCard,
      topics,
      tokens: [
        { name: "agent-svc", secret: AGENT_SECRET },
        { name: "chat-svc", secret: CHAT_SECRET },
      ],
      limits: { maxBatchEvents: 50, maxBodyBytes: 64 * 1024 },
      logger: false,
    });
    // The real deduction consumer applies what the ingest produced, into this file's keys.
    await fx.startConsumer({ clock: fx.clock.now });
  });
  afterAll(async () => {
    await ingest?.close();
  });

  it("answers 202 once Kafka acknowledged; the records are then on the topic with their ids", async () => {
    const before = await highWaterMarks(topics.usage);
    const single = await post(usage(1));
    expect(single.statusCode).toBe(202);
    expect(single.json()).toEqual({ accepted: ["evt-1"] });
    // Acknowledged means written: the high-water mark moved before we read anything.
    expect(await highWaterMarks(topics.usage)).toBe(before + 1);

    const batch = [usage(2), usage(3), { ...usage(4), service: "named-by-event" }];
    const many = await post({ events: batch }, { authorization: `Bearer ${CHAT_SECRET}` });
    expect(many.statusCode).toBe(202);
    expect(many.json()).toEqual({ accepted: ["evt-2", "evt-3", "evt-4"] });
    expect(await highWaterMarks(topics.usage)).toBe(before + 4);

    const records = await readUsage(4);
    const byId = new Map(records.map((r) => [r.value.eventId, r]));
    expect([...byId.keys()].sort()).toEqual(["evt-1", "evt-2", "evt-3", "evt-4"]);
    expect(byId.get("evt-1")).toMatchObject({
      key: "user-1",
      value: { userId: "user-1", feature: "code", inputTokens: 2001, service: "agent-svc" },
    });
    // The token's name is the service unless the event names its own.
    expect(byId.get("evt-2")!.value.service).toBe("chat-svc");
    expect(byId.get("evt-4")!.value.service).toBe("named-by-event");
  });

  it("answers 401 without a token or with a bad one, and writes nothing", async () => {
    const before = await highWaterMarks(topics.usage);
    for (const headers of [
      {} as Record<string, string>,
      { authorization: "Bearer not-a-configured-token" },
      { authorization: `Basic ${AGENT_SECRET}` },
      { authorization: `Bearer ${AGENT_SECRET}x` },
    ]) {
      const res = await post(usage(10), headers);
      expect(res.statusCode).toBe(401);
      expect(res.json()).toMatchObject({ error: { code: "unauthorized", field: "authorization" } });
    }
    expect(await highWaterMarks(topics.usage)).toBe(before);
  });

  it("answers 400 naming the field, and writes nothing", async () => {
    const before = await highWaterMarks(topics.usage);
    const cases = [
      [{ ...usage(20), feature: "teleport" }, "feature", "unknown_feature"],
      [{ ...usage(21), inputTokens: -5 }, "inputTokens", "range"],
      [{ ...usage(22), userId: undefined }, "userId", "required"],
      [{ ...usage(23), eventId: "not an id" }, "eventId", "format"],
      [{ ...usage(24), model: "gpt-9" }, "model", "unknown_model"],
      [{ ...usage(25), occurredAt: "yesterday" }, "occurredAt", "format"],
    ] as const;
    for (const [event, field] of cases) {
      const res = await post(event);
      expect(res.statusCode, field).toBe(400);
      expect(res.json().error).toMatchObject({ code: "invalid_input", field });
      expect(res.json().error.message).toContain(field);
    }
    const malformed = await post("{ not json", { ...auth, "content-type": "application/json" });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error.code).toBe("invalid_json");
    const empty = await post({ events: [] });
    expect(empty.json().error).toMatchObject({ code: "invalid_input", field: "events" });
    expect(await highWaterMarks(topics.usage)).toBe(before);
  });

  it("writes nothing from a batch with one bad event, naming it", async () => {
    const before = await highWaterMarks(topics.usage);
    const events = [usage(30), usage(31), usage(32), { ...usage(33), inputTokens: -1 }, usage(34)];
    const res = await post({ events });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      error: { code: "invalid_input", field: "events.3.inputTokens", message: expect.any(String) },
    });
    await ingest.producer.flush();
    expect(await highWaterMarks(topics.usage)).toBe(before);
  });

  it("answers an event older than the duplicate horizon 400 too_old naming occurredAt, and writes nothing", async () => {
    expect(ingest.dedupeHorizonMs).toBe(DEFAULT_DEDUPE_HORIZON_MS);
    const before = await highWaterMarks(topics.usage);
    const tooOld = new Date(Date.now() - DEFAULT_DEDUPE_HORIZON_MS - 60_000).toISOString();
    const single = await post({ ...usage(40), occurredAt: tooOld });
    expect(single.statusCode).toBe(400);
    expect(single.json()).toEqual({
      error: { code: "too_old", field: "occurredAt", message: expect.stringContaining(tooOld) },
    });
    const events = [usage(41), usage(42), { ...usage(43), occurredAt: tooOld }, usage(44)];
    const batch = await post({ events });
    expect(batch.statusCode).toBe(400);
    expect(batch.json()).toEqual({
      error: { code: "too_old", field: "events.2.occurredAt", message: expect.any(String) },
    });
    // An event inside the horizon, even hours old, is taken.
    const hoursOld = new Date(Date.now() - 20 * 60 * 60 * 1000).toISOString();
    await ingest.producer.flush();
    expect(await highWaterMarks(topics.usage)).toBe(before);
    const late = await post({ ...usage(45, "late-user"), occurredAt: hoursOld });
    expect(late.statusCode).toBe(202);
    expect(await highWaterMarks(topics.usage)).toBe(before + 1);
  });

  it("answers a batch resent after its 202 as the first time, and the consumer debits it once", async () => {
    const user = "resend-user";
    const events = [usage(60, user), usage(61, user), usage(62, user)];
    const before = await highWaterMarks(topics.usage);
    const first = await post({ events });
    expect(first.statusCode).toBe(202);
    // The sender never saw the answer (a timeout, a lost connection): it resends the same batch.
    const again = await post({ events });
    expect(again.statusCode).toBe(202);
    expect(again.json()).toEqual(first.json());
    expect(first.json()).toEqual({ accepted: ["evt-60", "evt-61", "evt-62"] });
    // Both copies are on the topic: the ingest keeps no memory of ids, the consumer does.
    expect(await highWaterMarks(topics.usage)).toBe(before + 6);

    await fx.caughtUp([topics.usage]);
    const stored = await fx.member(user);
    const once: EngineInput[] = events.map((u) => usageEvent(u, rateCard));
    const expected = replayMember(user, once, config, NOW_MS)!;
    const untouched = replayMember(user, once.slice(0, 1), config, NOW_MS)!;
    expect(ledgerBalanceMicros(stored.state!)).toBe(ledgerBalanceMicros(expected));
    // The three events did cost something: debited once is not debited never.
    expect(ledgerBalanceMicros(expected)).toBeLessThan(ledgerBalanceMicros(untouched));
  });

  it("answers 413 for a batch over the limit or a body over the limit", async () => {
    const before = await highWaterMarks(topics.usage);
    const tooMany = await post({ events: Array.from({ length: 51 }, (_, n) => usage(100 + n)) });
    expect(tooMany.statusCode).toBe(413);
    expect(tooMany.json().error).toMatchObject({ code: "batch_too_large", field: "events" });

    const tooLarge = await post({ ...usage(200), taskId: "x".repeat(70 * 1024) });
    expect(tooLarge.statusCode).toBe(413);
    expect(tooLarge.json().error.code).toBe("body_too_large");
    expect(await highWaterMarks(topics.usage)).toBe(before);
  });

  it("answers 415 for a body that is not JSON", async () => {
    const res = await post("eventId=evt-1", { ...auth, "content-type": "text/plain" });
    expect(res.statusCode).toBe(415);
    expect(res.json().error.code).toBe("unsupported_media_type");
    const form = await post("a=b", {
      ...auth,
      "content-type": "application/x-www-form-urlencoded",
    });
    expect(form.statusCode).toBe(415);
  });

  it("serves /healthz and Prometheus /metrics with requests, accepted events and refusals", async () => {
    expect((await ingest.app.inject({ url: "/healthz" })).json()).toEqual({ status: "ok" });
    const res = await ingest.app.inject({ url: "/metrics" });
    expect(res.statusCode).toBe(200);
    expect(res.body).toMatch(/cf_ingest_events_accepted_total\{service="agent-svc"\} [1-9]/);
    expect(res.body).toMatch(/cf_ingest_refused_total\{code="unauthorized"\} 4/);
    expect(res.body).toMatch(/cf_ingest_requests_total\{route="\/v1\/usage",status="202"\}/);
    const openapi = (await ingest.app.inject({ url: "/openapi.json" })).json();
    expect(Object.keys(openapi.paths)).toEqual(["/v1/usage"]);
    expect(openapi.paths["/v1/usage"].post.responses).toHaveProperty("202");
    const refusal = openapi.paths["/v1/usage"].post.responses["4XX"];
    const code = refusal.content["application/json"].schema.properties.error.properties.code;
    expect(code.enum).toContain("too_old");
  });

  it("refuses bad named limits and tokens at start-up, naming the field", async () => {
    const base = {
      brokers: urls.kafkaBrokers,
      schemaRegistryUrl: urls.schemaRegistryUrl,
      rateCard,
      topics,
      logger: false as const,
    };
    const tokens = [{ name: "svc", secret: AGENT_SECRET }];
    await expect(
      buildIngest({ ...base, tokens, limits: { maxBatchEvents: 0 } }),
    ).rejects.toMatchObject({ name: IngestOptionError.name, field: "limits.maxBatchEvents" });
    await expect(
      buildIngest({ ...base, tokens, limits: { maxBodyBytes: 1e9 } }),
    ).rejects.toMatchObject({ field: "limits.maxBodyBytes" });
    await expect(buildIngest({ ...base, tokens: [] })).rejects.toMatchObject({ field: "tokens" });
    await expect(
      buildIngest({ ...base, tokens: [{ name: "svc", secret: "short" }] }),
    ).rejects.toMatchObject({ field: "tokens.0.secret" });
    for (const dedupeHorizonMs of [999, 36 * 24 * 60 * 60 * 1000]) {
      await expect(buildIngest({ ...base, tokens, dedupeHorizonMs })).rejects.toMatchObject({
        name: IngestOptionError.name,
        field: "dedupeHorizonMs",
      });
    }
  });
});
