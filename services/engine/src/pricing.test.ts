// Goal: pricing rounds the integer sum up, and names that are not on the rate card, including
// names of Object properties, answer null instead of throwing.
import { describe, expect, it } from "vitest";
import { shippedRateCard } from "./fixtures.ts";
import { priceUsage } from "./pricing.ts";

const tokens = { inputTokens: 1000, outputTokens: 100, cachedInputTokens: 1 };

describe("priceUsage", () => {
  it("sums the per-1,000 rates and rounds up", () => {
    const r = shippedRateCard.features.chat.models["kimi-k2"]!;
    const exact = 1000 * r.inputPer1kMicros + 100 * r.outputPer1kMicros + r.cachedInputPer1kMicros;
    expect(priceUsage(shippedRateCard, "chat", "kimi-k2", tokens)).toBe(Math.ceil(exact / 1000));
  });

  it("answers null for unknown or hostile feature and model names", () => {
    for (const [feature, model] of [
      ["constructor", "kimi-k2"],
      ["__proto__", "kimi-k2"],
      ["teleport", "kimi-k2"],
      ["chat", "constructor"],
      ["chat", "gpt-0"],
    ]) {
      expect(priceUsage(shippedRateCard, feature as "chat", model!, tokens)).toBeNull();
    }
  });
});
