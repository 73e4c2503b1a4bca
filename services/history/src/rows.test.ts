// Goal: history keeps only usage the consumer can debit (known feature and model, tokens >= 0,
// a user), prices it with the rate card, and never throws on a hostile feature name.
import { readFileSync } from "node:fs";
import type { UsageEventRecord } from "@creditflow/contracts";
import { parseRateCard } from "@creditflow/engine";
import { describe, expect, it } from "vitest";
import { usageRow } from "./rows.ts";

const rateCard = parseRateCard(
  JSON.parse(
    readFileSync(new URL("../../../deploy/config/rate-card.json", import.meta.url), "utf8"),
  ),
  "rate-card.json",
);
const at = { partition: 2, offset: 41 };
const record: UsageEventRecord = {
  eventId: "e-1",
  userId: "u-1",
  taskId: "t-1",
  feature: "chat",
  taskKind: null,
  model: "kimi-k2",
  inputTokens: 1000,
  outputTokens: 100,
  cachedInputTokens: 0,
  occurredAt: Date.UTC(2026, 10, 25, 12),
  service: "svc",
};

describe("usageRow", () => {
  it("prices a debitable event with the rate card", () => {
    expect(usageRow(record, at, rateCard)).toMatchObject({
      event_id: "e-1",
      cost_micros: Math.ceil((1000 * 10_000 + 100 * 40_000) / 1000),
      occurred_at: "2026-11-25 12:00:00.000",
      kafka_partition: 2,
      kafka_offset: 41,
    });
  });

  it("leaves out what the consumer dead-letters, without throwing", () => {
    for (const bad of [
      { feature: "constructor" },
      { feature: "__proto__" },
      { feature: "teleport" },
      { model: "constructor" },
      { inputTokens: -1 },
      { userId: "" },
    ]) {
      expect(usageRow({ ...record, ...bad }, at, rateCard)).toBeNull();
    }
  });
});
