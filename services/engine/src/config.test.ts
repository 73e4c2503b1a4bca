// Goal: the shipped rate card and plans are valid and reproduce the published free-tier examples;
// bad configuration fails with the file, the JSON path and what is wrong; pricing is integer math.

import { describe, expect, it } from "vitest";
import { makeConfig, parsePlans, parseRateCard } from "./config.ts";
import { EngineError } from "./errors.ts";
import {
  config,
  PLANS_PATH,
  RATE_CARD_PATH,
  readJson,
  shippedPlans,
  shippedRateCard,
} from "./fixtures.ts";
import { priceUsage } from "./pricing.ts";
import type { Feature } from "./types.ts";

const freeMonthly = config.tiersById.get("free")!.monthlyAllowanceMicros;

/** Typical token counts per task (services/engine/README.md explains where they come from). */
const TYPICAL = {
  simplePpt: {
    feature: "agent",
    model: "kimi-k2",
    inputTokens: 60_000,
    cachedInputTokens: 120_000,
    outputTokens: 15_000,
  },
  deepResearch: {
    feature: "agent",
    model: "kimi-k2",
    inputTokens: 400_000,
    cachedInputTokens: 600_000,
    outputTokens: 30_000,
  },
  pieceOfCode: {
    feature: "code",
    model: "kimi-k2",
    inputTokens: 50_000,
    cachedInputTokens: 100_000,
    outputTokens: 8_000,
  },
} as const;

function percentOfFree(task: (typeof TYPICAL)[keyof typeof TYPICAL]): number {
  const cost = priceUsage(config.rateCard, task.feature as Feature, task.model, task);
  if (cost === null) throw new Error("priced");
  return (cost * 100) / freeMonthly;
}

describe("published free-tier examples (deploy/config)", () => {
  it("a simple PPT costs 1-2% of the free monthly credits", () => {
    const p = percentOfFree(TYPICAL.simplePpt);
    expect(p).toBeGreaterThanOrEqual(1);
    expect(p).toBeLessThanOrEqual(2);
  });
  it("a deep research task costs 5-10%", () => {
    const p = percentOfFree(TYPICAL.deepResearch);
    expect(p).toBeGreaterThanOrEqual(5);
    expect(p).toBeLessThanOrEqual(10);
  });
  it("a piece of code costs 0.5-2%", () => {
    const p = percentOfFree(TYPICAL.pieceOfCode);
    expect(p).toBeGreaterThanOrEqual(0.5);
    expect(p).toBeLessThanOrEqual(2);
  });
});

describe("pricing", () => {
  /** The cost of a chat event with these token counts (input, output, cached input). */
  function chatCost(
    model: string,
    inputTokens: number,
    outputTokens: number,
    cachedInputTokens: number,
  ) {
    return priceUsage(shippedRateCard, "chat", model, {
      inputTokens,
      outputTokens,
      cachedInputTokens,
    });
  }

  it("is the rounded-up sum of the three rates, in integers", () => {
    // 1 input token at 10,000 micros per 1,000 = 10 micros; 1 output = 40; 1 cached = 2.5 -> 53 (rounded up).
    expect(chatCost("kimi-k2", 1, 1, 1)).toBe(53);
    expect(chatCost("kimi-k2", 0, 0, 2)).toBe(5);
    expect(chatCost("kimi-k2", 0, 0, 0)).toBe(0);
    const huge = chatCost("kimi-k2-turbo", 1e8, 1e8, 1e8 + 1);
    expect(Number.isSafeInteger(huge)).toBe(true);
  });
  it("knows nothing of models off the card (not even Object.prototype names)", () => {
    expect(chatCost("nope", 1, 0, 0)).toBeNull();
    expect(chatCost("toString", 1, 0, 0)).toBeNull();
  });
});

describe("configuration errors name the file, the path and what is wrong", () => {
  function issuesOf(fn: () => unknown) {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(EngineError);
      expect((e as EngineError).code).toBe("config_invalid");
      return (e as EngineError).issues;
    }
    throw new Error("expected a config error");
  }

  it("a negative rate", () => {
    const bad = structuredClone(readJson(RATE_CARD_PATH)) as typeof shippedRateCard;
    bad.features.code.models["kimi-k2"]!.outputPer1kMicros = -5;
    const issues = issuesOf(() => parseRateCard(bad, "rate-card.json"));
    expect(issues[0]).toMatchObject({
      source: "rate-card.json",
      path: "/features/code/models/kimi-k2/outputPer1kMicros",
    });
    expect(issues[0]?.message).toMatch(/greater or equal to 0/);
  });

  it("a feature missing from the rate card", () => {
    const bad = structuredClone(readJson(RATE_CARD_PATH)) as { features: Record<string, unknown> };
    delete bad.features.image;
    const issues = issuesOf(() => parseRateCard(bad, "rc.json"));
    expect(issues.some((i) => i.path === "/features/image")).toBe(true);
  });

  it("a fractional allowance, an unknown capability, a duplicate tier, a missing free tier", () => {
    const bad = structuredClone(readJson(PLANS_PATH)) as typeof shippedPlans;
    bad.tiers[1]!.monthlyAllowanceMicros = 1.5;
    bad.tiers[2]!.capabilities = ["teleport" as never];
    let issues = issuesOf(() => parsePlans(bad, "plans.json"));
    expect(issues.map((i) => i.path)).toEqual(
      expect.arrayContaining(["/tiers/1/monthlyAllowanceMicros", "/tiers/2/capabilities/0"]),
    );
    const dup = structuredClone(shippedPlans);
    dup.tiers[2]!.id = "plus";
    dup.freeTierId = "basic";
    issues = issuesOf(() => parsePlans(dup, "plans.json"));
    expect(issues).toEqual([
      { source: "plans.json", path: "/tiers/2/id", message: 'duplicate tier id "plus"' },
      { source: "plans.json", path: "/freeTierId", message: 'no tier with id "basic"' },
    ]);
  });

  it("a higher tier with a smaller allowance", () => {
    const bad = structuredClone(shippedPlans);
    bad.tiers[3]!.monthlyAllowanceMicros = 1;
    const issues = issuesOf(() => parsePlans(bad, "plans.json"));
    expect(issues[0]).toMatchObject({ path: "/tiers/3/monthlyAllowanceMicros" });
  });

  it("the message lists every issue with its file and path", () => {
    const bad = { ...structuredClone(shippedPlans), overdraft: "sometimes" };
    expect(() => parsePlans(bad, "deploy/config/plans.json")).toThrow(
      /deploy\/config\/plans.json: \/overdraft: /,
    );
  });

  it("the shipped files are valid", () => {
    expect(() => makeConfig(shippedRateCard, shippedPlans)).not.toThrow();
  });
});
