// Goal: the generated load is the realistic mix it claims, with no I/O: event shares per
// feature near their targets, typical task costs on the product rules' free-tier examples with the
// shipped rate card, duplicates and late events at the asked fractions, late duplicates sent
// after at least the asked number of newer events of their member, one seed one plan.
import { readFileSync } from "node:fs";
import { type Feature, parseRateCard, priceUsage } from "@creditflow/engine";
import { describe, expect, it } from "vitest";
import {
  EVENT_SHARE,
  type PlannedSend,
  type PlanOptions,
  planCommands,
  planMembers,
  planUsage,
} from "./generate.ts";

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

  it("puts typical tasks on the product rules' free-tier examples (median % of monthly credits)", () => {
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

/** For each duplicate send: the unique events of its member between the original and it. */
function recountDistances(plan: PlannedSend[]): number[] {
  const countOf = new Map<string, number>();
  const countAtOriginal = new Map<string, number>();
  const distances: number[] = [];
  for (const s of plan) {
    const { eventId, userId } = s.input;
    if (s.duplicate) {
      distances.push((countOf.get(userId) ?? 0) - countAtOriginal.get(eventId)!);
      continue;
    }
    const count = (countOf.get(userId) ?? 0) + 1;
    countOf.set(userId, count);
    countAtOriginal.set(eventId, count);
  }
  return distances;
}

describe("planUsage with late duplicates", () => {
  // The chaos run's shape: 2,000 members, 1,000 events/s for 2 minutes.
  const lo: PlanOptions = {
    users: 2_000,
    events: 120_000,
    ratePerSecond: 1_000,
    seed: 1,
    startMs: Date.UTC(2026, 10, 25),
    duplicates: 0.01,
    late: 0.02,
    lateDuplicates: 0.25,
    lateDuplicateDistance: 300,
  };
  const plan = [...planUsage(lo, planMembers(lo))];
  const duplicates = plan.filter((s) => s.duplicate);
  const lateDuplicates = plan.filter((s) => s.lateDuplicate);

  it("sends the asked share of the duplicates late, exact copies of events sent before", () => {
    const events = plan.length - duplicates.length;
    expect(events).toBe(lo.events);
    expect(duplicates.length / events).toBeGreaterThan(0.008);
    expect(duplicates.length / events).toBeLessThan(0.012);
    const share = lateDuplicates.length / duplicates.length;
    expect(share).toBeGreaterThan(0.2);
    expect(share).toBeLessThan(0.3);
    expect(lateDuplicates.every((s) => s.duplicate && !s.late)).toBe(true);
    const original = new Map(plan.filter((s) => !s.duplicate).map((s) => [s.input.eventId, s]));
    for (const s of duplicates) {
      const first = original.get(s.input.eventId);
      expect(first).toBeDefined();
      expect(s.input).toEqual(first!.input);
      expect(plan.indexOf(s)).toBeGreaterThan(plan.indexOf(first!));
    }
  });

  it("sends each late duplicate after at least the asked newer events of its member", () => {
    const recounted = recountDistances(plan);
    expect(duplicates.map((s) => s.newerOfMember)).toEqual(recounted);
    // Every one reaches the distance in a run this long; the regular ones come within 50 events.
    for (const s of lateDuplicates) expect(s.newerOfMember).toBeGreaterThanOrEqual(300);
    expect(Math.max(...lateDuplicates.map((s) => s.newerOfMember))).toBeLessThanOrEqual(450);
    for (const s of duplicates) if (!s.lateDuplicate) expect(s.newerOfMember).toBeLessThan(50);
    // Spread over the run, not all at its end.
    const endMs = (lo.events * 1000) / lo.ratePerSecond;
    const beforeEnd = lateDuplicates.filter((s) => s.offsetMs < endMs).length;
    expect(beforeEnd / lateDuplicates.length).toBeGreaterThan(0.9);
    // Another asked distance, another population: 300 members, so heavier ones.
    const farther = { ...o, lateDuplicates: 0.5, lateDuplicateDistance: 1_000 };
    const sends = [...planUsage(farther, planMembers(farther))].filter((s) => s.lateDuplicate);
    expect(sends.length).toBeGreaterThan(500);
    for (const s of sends) expect(s.newerOfMember).toBeGreaterThanOrEqual(1_000);
  });

  it("sends them at the end, nearer, when the run is too short for the distance", () => {
    const short = { ...lo, users: 20, events: 2_000, ratePerSecond: 200, duplicates: 0.05 };
    const sends = [...planUsage(short, planMembers(short))];
    const late = sends.filter((s) => s.lateDuplicate);
    const all = sends.filter((s) => s.duplicate);
    expect(late.length / all.length).toBeGreaterThan(0.15);
    expect(late.length / all.length).toBeLessThan(0.35);
    expect(late.every((s) => s.offsetMs === 10_000 && s.newerOfMember < 300)).toBe(true);
    expect(sends.filter((s) => s.duplicate).map((s) => s.newerOfMember)).toEqual(
      recountDistances(sends),
    );
  });

  it("gives the same plan for the same seed, another for another seed", () => {
    expect([...planUsage(lo, planMembers(lo))]).toEqual(plan);
    const other = { ...lo, seed: 2 };
    const ids = (p: PlannedSend[]) => p.filter((s) => s.lateDuplicate).map((s) => s.input.eventId);
    expect(ids([...planUsage(other, planMembers(other))])).not.toEqual(ids(plan));
  });

  it("refuses a share outside [0, 1] and a distance that is not a positive integer", () => {
    const members = planMembers(lo);
    expect(() => planUsage({ ...lo, lateDuplicates: 1.5 }, members).next()).toThrow(
      /lateDuplicates/,
    );
    expect(() => planUsage({ ...lo, lateDuplicateDistance: 0 }, members).next()).toThrow(
      /lateDuplicateDistance/,
    );
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
