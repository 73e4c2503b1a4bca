// Goal: the generated load is the realistic mix it claims, with no I/O: event shares per
// feature near their targets, typical task costs on DESIGN.md's free-tier examples with the
// shipped rate card, duplicates and late events at the asked fractions, one seed one plan.
import { readFileSync } from "node:fs";
import { type Feature, parseRateCard, priceUsage } from "@creditflow/engine";
import { describe, expect, it } from "vitest";
import { EVENT_SHARE, planCommands, planMembers, planUsage } from "./generate.ts";

const rateCard = parseRateCard(
  JSON.parse(
    readFileSync(new URL("../../../deploy/config/rate-card.json", import.meta.url), "utf8"),
  ),
  "rate-card.json",
);
/** The free tier's monthly allowance in deploy/config/plans.json (100 credits). */
const FREE_MONTHLY_MICROS = 100_000_000;
const o = {
  users: 300,
  events: 60_000,
  ratePerSecond: 1_000,
  seed: 5,
  startMs: Date.UTC(2026, 10, 25),
  duplicates: 0.02,
  late: 0.03,
};
const members = planMembers(o);
const sends = [...planUsage(o, members)];
const unique = sends.filter((s) => !s.duplicate);

describe("planUsage", () => {
  it("sends the asked events, with duplicates and late events near their fractions", () => {
    expect(unique).toHaveLength(o.events);
    expect(new Set(unique.map((s) => s.input.eventId)).size).toBe(o.events);
    const duplicates = sends.length - unique.length;
    expect(duplicates / o.events).toBeGreaterThan(0.015);
    expect(duplicates / o.events).toBeLessThan(0.025);
    const late = unique.filter((s) => s.late).length;
    expect(late / o.events).toBeGreaterThan(0.025);
    expect(late / o.events).toBeLessThan(0.035);
  });

  it("keeps each feature's share of events within 3 points of its target", () => {
    for (const [feature, share] of Object.entries(EVENT_SHARE)) {
      const n = unique.filter((s) => s.input.feature === feature).length;
      expect(Math.abs(n / o.events - share), feature).toBeLessThan(0.03);
    }
  });

  it("puts typical tasks on DESIGN.md's free-tier examples (median % of monthly credits)", () => {
    const taskCost = new Map<string, { kind: string; micros: number }>();
    for (const { input } of unique) {
      const micros = priceUsage(rateCard, input.feature as Feature, input.model, {
        inputTokens: input.inputTokens,
        outputTokens: input.outputTokens,
        cachedInputTokens: input.cachedInputTokens ?? 0,
      });
      expect(micros).not.toBeNull();
      const t = taskCost.get(input.taskId) ?? { kind: input.taskKind ?? input.feature, micros: 0 };
      t.micros += micros!;
      taskCost.set(input.taskId, t);
    }
    const medianPercent = (kind: string) => {
      const xs = [...taskCost.values()]
        .filter((t) => t.kind === kind)
        .map((t) => (100 * t.micros) / FREE_MONTHLY_MICROS)
        .sort((a, b) => a - b);
      return xs[Math.floor(xs.length / 2)]!;
    };
    expect(medianPercent("ppt")).toBeGreaterThanOrEqual(1);
    expect(medianPercent("ppt")).toBeLessThanOrEqual(2);
    expect(medianPercent("deep_research")).toBeGreaterThanOrEqual(5);
    expect(medianPercent("deep_research")).toBeLessThanOrEqual(10);
    expect(medianPercent("code")).toBeGreaterThanOrEqual(0.5);
    expect(medianPercent("code")).toBeLessThanOrEqual(2);
    expect(medianPercent("chat")).toBeLessThan(medianPercent("code"));
  });

  it("makes tasks of several events and gives the same plan for the same seed", () => {
    const perTask = new Map<string, number>();
    for (const { input } of unique) perTask.set(input.taskId, (perTask.get(input.taskId) ?? 0) + 1);
    const multi = [...perTask.values()].filter((n) => n > 1).length;
    expect(multi / perTask.size).toBeGreaterThan(0.5);
    const again = [...planUsage(o, planMembers(o))];
    expect(again).toEqual(sends);
  });
});

describe("planCommands", () => {
  it("subscribes the paid members and gives many a trial and some a promotion", () => {
    const commands = planCommands(members, o.seed, o.startMs);
    const paid = members.filter((m) => m.tier !== "free").length;
    expect(commands.filter((c) => c.type === "subscription_start")).toHaveLength(paid);
    const trials = commands.filter((c) => c.type === "grant_bonus" && c.source === "trial");
    const promos = commands.filter((c) => c.type === "grant_bonus" && c.source === "promotion");
    expect(trials.length / members.length).toBeGreaterThan(0.45);
    expect(promos.length / members.length).toBeGreaterThan(0.15);
    expect(new Set(commands.map((c) => c.id)).size).toBe(commands.length);
    expect(planCommands(members, o.seed, o.startMs)).toEqual(commands);
  });
});
