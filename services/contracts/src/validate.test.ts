// Goal: bad usage input is refused before Kafka with every faulty field named, and good input
// becomes exactly the engine's usage event.

import { readFileSync } from "node:fs";
import { parseRateCard } from "@creditflow/engine";
import { describe, expect, it } from "vitest";
import { validateUsage } from "./validate.ts";

const rateCardPath = new URL("../../../deploy/config/rate-card.json", import.meta.url);
const rateCard = parseRateCard(JSON.parse(readFileSync(rateCardPath, "utf8")), "rate-card.json");

const good = {
  eventId: "evt-1",
  userId: "user-1",
  taskId: "task-1",
  feature: "agent",
  taskKind: "ppt",
  model: "kimi-k2",
  inputTokens: 12_000,
  outputTokens: 3_000,
  occurredAt: "2026-11-25T12:00:00.000Z",
  service: "agent-runtime",
};

function fields(value: unknown): string[] {
  const r = validateUsage(value, rateCard);
  return r.ok ? [] : r.errors.map((e) => `${e.field}:${e.code}`);
}

describe("validateUsage", () => {
  it("turns good input into the engine's usage event", () => {
    // The fields of the same name are carried as they are; the others as below.
    const { eventId: _eventId, occurredAt: _occurredAt, service: _service, ...same } = good;
    expect(validateUsage(good, rateCard)).toEqual({
      ok: true,
      value: {
        type: "usage",
        id: "evt-1",
        ...same,
        cachedInputTokens: 0,
        eventAtMs: Date.UTC(2026, 10, 25, 12),
      },
    });
  });

  it("names a missing user, negative tokens, an id that is not an id", () => {
    const { userId: _, ...noUser } = good;
    expect(fields(noUser)).toEqual(["userId:required"]);
    expect(fields({ ...good, inputTokens: -1 })).toEqual(["inputTokens:range"]);
    expect(fields({ ...good, outputTokens: 1.5 })).toEqual(["outputTokens:type"]);
    expect(fields({ ...good, eventId: "has space" })).toEqual(["eventId:format"]);
    expect(fields({ ...good, taskId: "x".repeat(129) })).toEqual(["taskId:format"]);
  });

  it("names an unknown feature, model, task kind or field", () => {
    expect(fields({ ...good, feature: "teleport" })).toEqual(["feature:unknown_feature"]);
    expect(fields({ ...good, model: "gpt-0" })).toEqual(["model:unknown_model"]);
    expect(fields({ ...good, taskKind: "poem" })).toEqual(["taskKind:format"]);
    expect(fields({ ...good, feature: "chat", taskKind: "ppt" })).toEqual(["taskKind:format"]);
    expect(fields({ ...good, tokens: 5 })).toEqual(["tokens:unknown_field"]);
    expect(fields({ ...good, occurredAt: "yesterday" })).toEqual(["occurredAt:format"]);
  });

  it("prefixes the field with where the event sits in a batch", () => {
    const r = validateUsage({ ...good, userId: "" }, rateCard, "events.3");
    expect(r.ok ? [] : r.errors.map((e) => e.field)).toEqual(["events.3.userId"]);
  });

  it("refuses what is not an object at all", () => {
    expect(fields("nope")).toEqual([":type"]);
    expect(fields(null)).toEqual([":type"]);
  });
});
