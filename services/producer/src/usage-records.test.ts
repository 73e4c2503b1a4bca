// Goal: the producer refuses, before Kafka, an event older than the duplicate horizon by its
// clock (`too_old` naming occurredAt, `events.N.occurredAt` in a batch, nothing of the batch
// kept), accepts one at the edge, and refuses a horizon option out of its range by name.
import { readFileSync } from "node:fs";
import {
  DEFAULT_DEDUPE_HORIZON_MS,
  MAX_DEDUPE_HORIZON_MS,
  MIN_DEDUPE_HORIZON_MS,
  parseRateCard,
} from "@creditflow/engine";
import { describe, expect, it } from "vitest";
import { ProducerError } from "./errors.ts";
import { checkOptions, type ProducerOptions } from "./options.ts";
import { type UsageRules, usageRecordOf, usageRecordsOf } from "./usage-records.ts";

const rateCard = parseRateCard(
  JSON.parse(
    readFileSync(new URL("../../../deploy/config/rate-card.json", import.meta.url), "utf8"),
  ),
  "rate-card.json",
);
const NOW = Date.UTC(2026, 11, 7, 12);
const rules: UsageRules = { rateCard, service: "svc", dedupeHorizonMs: DEFAULT_DEDUPE_HORIZON_MS };

function usage(n: number, occurredAt: number | string = NOW - 60_000) {
  return {
    eventId: `evt-${n}`,
    userId: "user-1",
    taskId: "task-1",
    feature: "chat",
    model: "kimi-k2",
    inputTokens: 1000,
    outputTokens: 200,
    occurredAt,
  };
}

function refusal(run: () => unknown): ProducerError {
  try {
    run();
  } catch (error) {
    if (error instanceof ProducerError) return error;
    throw error;
  }
  throw new Error("expected a ProducerError");
}

describe("usageRecordOf", () => {
  it("accepts an event at the edge of the horizon and refuses one a millisecond older", () => {
    const edge = usageRecordOf(usage(1, NOW - DEFAULT_DEDUPE_HORIZON_MS), rules, NOW);
    expect(edge).toMatchObject({ ok: true, record: { eventId: "evt-1", service: "svc" } });
    const old = usageRecordOf(usage(2, NOW - DEFAULT_DEDUPE_HORIZON_MS - 1), rules, NOW);
    expect(old).toEqual({
      ok: false,
      errors: [{ field: "occurredAt", code: "too_old", message: expect.any(String) }],
    });
  });

  it("judges an ISO-8601 occurredAt the same way, by the horizon it is given", () => {
    const twoHoursAgo = new Date(NOW - 2 * 60 * 60 * 1000).toISOString();
    expect(usageRecordOf(usage(3, twoHoursAgo), rules, NOW).ok).toBe(true);
    const oneHour = { ...rules, dedupeHorizonMs: 60 * 60 * 1000 };
    expect(usageRecordOf(usage(3, twoHoursAgo), oneHour, NOW)).toMatchObject({
      ok: false,
      errors: [{ field: "occurredAt", code: "too_old" }],
    });
  });

  it("reports a malformed occurredAt as invalid, not as too old", () => {
    expect(usageRecordOf(usage(4, "yesterday"), rules, NOW)).toMatchObject({
      ok: false,
      errors: [{ field: "occurredAt", code: "format" }],
    });
  });
});

describe("usageRecordsOf", () => {
  it("refuses a whole batch with one old event, naming events.N.occurredAt, code too_old", () => {
    const batch = [usage(1), usage(2), usage(3, NOW - 2 * DEFAULT_DEDUPE_HORIZON_MS), usage(4)];
    const error = refusal(() => usageRecordsOf(batch, rules, NOW));
    expect(error.code).toBe("too_old");
    expect(error.retryable).toBe(false);
    expect(error.fields.map((f) => `${f.field}:${f.code}`)).toEqual([
      "events.2.occurredAt:too_old",
    ]);
  });

  it("takes the code of the first refusal and names every refused event", () => {
    const batch = [usage(1), { ...usage(2), inputTokens: -1 }, usage(3, 0)];
    const error = refusal(() => usageRecordsOf(batch, rules, NOW));
    expect(error.code).toBe("invalid_input");
    expect(error.fields.map((f) => `${f.field}:${f.code}`)).toEqual([
      "events.1.inputTokens:range",
      "events.2.occurredAt:too_old",
    ]);
  });

  it("returns every record of a good batch in order", () => {
    const records = usageRecordsOf([usage(1), usage(2)], rules, NOW);
    expect(records.map((r) => r.eventId)).toEqual(["evt-1", "evt-2"]);
  });
});

describe("dedupeHorizonMs option", () => {
  const options: ProducerOptions = {
    brokers: ["127.0.0.1:9092"],
    schemaRegistryUrl: "http://127.0.0.1:8081",
    service: "svc",
    rateCard,
  };
  it("takes the default when absent and any value from MIN to MAX", () => {
    expect(() => checkOptions(options)).not.toThrow();
    for (const ms of [MIN_DEDUPE_HORIZON_MS, MAX_DEDUPE_HORIZON_MS]) {
      expect(() => checkOptions({ ...options, dedupeHorizonMs: ms })).not.toThrow();
    }
  });

  it("refuses a value out of range or not an integer, naming the option", () => {
    for (const ms of [
      MIN_DEDUPE_HORIZON_MS - 1,
      MAX_DEDUPE_HORIZON_MS + 1,
      1.5e6 + 0.5,
      Number.NaN,
    ]) {
      const error = refusal(() => checkOptions({ ...options, dedupeHorizonMs: ms }));
      expect(error.code).toBe("invalid_options");
      expect(error.fields).toEqual([
        { field: "dedupeHorizonMs", code: "range", message: expect.any(String) },
      ]);
      expect(error.message).toMatch(/^dedupeHorizonMs: /);
    }
  });
});
