// Goal: over random sequences of usage, grants, tier changes, repeats and sweeps, every crossing is
// told exactly once and nothing is told without its crossing: the notifications equal those an
// observer derives from outside (the balance view, the ledger, the grants' expiries) with the
// sweeper waking the member at every deadline; they do not change under repeats, any split of the
// sequence with the state serialized between, or sweeps at any times.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { advanceTo, nextDeadlineMs } from "./advance.ts";
import { apply } from "./apply.ts";
import { decodeState, encodeState } from "./codec.ts";
import type { EngineConfig } from "./config.ts";
import { bonus, command, config, configWith, T0, usage } from "./fixtures.ts";
import { ctxAt, newMember } from "./harness.ts";
import { DAY_MS, HOUR_MS } from "./limits.ts";
import { balanceView } from "./queries.ts";
import type { EngineInput, LedgerEntry, MemberState, Notification } from "./types.ts";

type Step = { input: EngineInput | null; nowMs: number };

/** Amounts in hundredths of a credit, on the free tier's scale (100 credits): crossings are frequent. */
const cents = (max: number) => fc.integer({ min: 0, max: max * 100 }).map((n) => n * 10_000);
const LATENESS_MS = config.plans.allowedLatenessMs;

/** An action `a` drawn `weight` times in the mix, with its fields. */
function act<A extends string, F extends object>(
  weight: number,
  a: A,
  fields: { [K in keyof F]: fc.Arbitrary<F[K]> },
) {
  const record = fc.record({ a: fc.constant(a), ...fields }) as fc.Arbitrary<{ a: A } & F>;
  return { weight, arbitrary: record };
}

/** Steps: how long after the previous one, then what happens (a sweep: only time passes). */
const scenarioArb = fc.array(
  fc.tuple(
    fc.oneof(fc.nat(6 * HOUR_MS), fc.nat(5 * DAY_MS)),
    fc.oneof(
      act(8, "usage", {
        micros: cents(30),
        lateMs: fc.integer({ min: -LATENESS_MS / 5, max: 2 * LATENESS_MS }),
      }),
      act(3, "bonus", {
        micros: cents(30).filter((m) => m > 0),
        fromMs: fc.integer({ min: -HOUR_MS, max: 2 * DAY_MS }),
        lifeMs: fc.integer({ min: HOUR_MS, max: 12 * DAY_MS }),
        recurrence: fc.constantFrom(null, null, "5h" as const, "7d" as const),
      }),
      act(1, "take", { micros: cents(20) }),
      act(1, "tier", { tier: fc.constantFrom("plus", "pro") }),
      act(1, "cancel", {}),
      act(1, "revoke", { pick: fc.nat() }),
      act(2, "repeat", { pick: fc.nat() }),
      act(2, "sweep", {}),
    ),
  ),
  { minLength: 1, maxLength: 40 },
);

type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

/**
 * Generated actions as inputs at increasing processing times (a sweep has no input), ending with a
 * sweep at the last time.
 */
function toSteps(scenario: Scenario): Step[] {
  const steps: Step[] = [];
  const inputs: EngineInput[] = [];
  const grants: string[] = [];
  let now = T0;
  let paid = false;
  scenario.forEach(([dtMs, action], i) => {
    now += dtMs;
    const id = `i${i}`;
    let input: EngineInput | null = null;
    switch (action.a) {
      case "usage":
        input = usage(id, Math.max(0, now - action.lateMs), action.micros);
        break;
      case "bonus":
        grants.push(id);
        input = bonus(id, now, action.micros, now + action.fromMs + action.lifeMs, {
          effectiveFromMs: now + action.fromMs,
          recurrence: action.recurrence,
        });
        break;
      case "take":
        input = command("adjust", id, now, {
          amountMicros: -Math.max(10_000, action.micros),
          expiresAtMs: null,
          reason: "support",
        });
        break;
      case "tier":
        input = paid
          ? command("subscription_change", id, now, { tierId: action.tier })
          : command("subscription_start", id, now, { tierId: action.tier, billing: "monthly" });
        paid = true;
        break;
      case "cancel":
        input = command("subscription_cancel", id, now, {});
        break;
      case "revoke":
        input = command("revoke_grant", id, now, {
          grantId: grants.length > 0 ? grants[action.pick % grants.length]! : "none",
        });
        break;
      case "repeat":
        input = inputs.length > 0 ? inputs[action.pick % inputs.length]! : null;
        break;
      case "sweep":
        break;
    }
    if (input !== null) inputs.push(input);
    steps.push({ input, nowMs: now });
  });
  // Time passes to the end: what a refused or repeated input left untold is told by then.
  steps.push({ input: null, nowMs: now });
  return steps;
}

interface Run {
  state: MemberState;
  told: Notification[];
}

/** The steps through the engine as the consumer runs them; a step without input is a sweep. */
function run(state: MemberState, steps: Step[], cfg: EngineConfig): Run {
  const told: Notification[] = [];
  let s = state;
  for (const { input, nowMs } of steps) {
    const r = input === null ? advanceTo(s, ctxAt(nowMs, cfg)) : apply(s, input, ctxAt(nowMs, cfg));
    s = r.state;
    told.push(...r.notifications);
  }
  return { state: s, told };
}

/** What identifies a notification and what it says, without when the engine happened to run. */
function said(n: Notification) {
  const { processedAtMs: _, ...rest } = n;
  return rest;
}

/**
 * The observer: runs the steps with a sweep at every deadline and derives what should be told from
 * what anyone can see (the balance view, the ledger entries, the grants), never from the
 * notifications. Sides are looked at after every applied input and after every sweep in which
 * time changed credits (an entry, or a grant gone); threshold notices caused by time are named
 * `${userId}:${kind}:*:${atMs}` here (the engine names the instant's last grant stepped).
 */
function observe(steps: Step[], cfg: EngineConfig): string[] {
  const out: string[] = [];
  let s = newMember(T0, cfg);
  let low = false;
  let paused = false;
  const lateness = cfg.plans.allowedLatenessMs;
  const look = (state: MemberState, atMs: number, inputId: string | null) => {
    const view = balanceView(state, ctxAt(atMs, cfg));
    const cause = (kind: string) =>
      inputId === null ? `${state.userId}:${kind}:*:${atMs}` : `${inputId}/${kind}`;
    if (view.lowCredit !== low) {
      low = view.lowCredit;
      out.push(cause(low ? "low_credit" : "credits_restored"));
    }
    if ((view.remainingMicros === 0) !== paused) {
      paused = !paused;
      if (paused) out.push(cause("credits_exhausted"));
    }
  };
  const stepped = (entries: LedgerEntry[]) => {
    for (const e of entries) {
      if (e.kind === "reset") out.push(`${e.userId}:refreshed:${e.grantId}:${e.eventAtMs}`);
      if (e.kind === "expire" && e.cls === "bonus") {
        out.push(`${e.userId}:bonus_expired:${e.grantId}:${e.eventAtMs + lateness}`);
      }
    }
  };
  for (const { input, nowMs } of steps) {
    for (;;) {
      const d = nextDeadlineMs(s, { config: cfg });
      if (d === null || d > nowMs) break;
      const r = advanceTo(s, ctxAt(d, cfg));
      stepped(r.entries);
      const gone = s.grants.some((g) => !r.state.grants.some((h) => h.id === g.id));
      if (r.entries.length > 0 || gone) look(r.state, d, null);
      for (const g of r.state.grants) {
        for (const lead of cfg.bonusLeadTimes) {
          const atMs = (g.expiresAtMs ?? 0) - lead.beforeMs;
          if (g.cls === "bonus" && atMs === d && g.effectiveFromMs <= d && g.remainingMicros > 0) {
            out.push(`${s.userId}:bonus_expiring:${g.id}:${g.expiresAtMs}:${lead.name}`);
          }
        }
      }
      s = r.state;
    }
    if (input === null) {
      s = advanceTo(s, ctxAt(nowMs, cfg)).state;
      continue;
    }
    const r = apply(s, input, ctxAt(nowMs, cfg));
    if (r.outcome.status === "applied") {
      stepped(r.entries);
      look(r.state, r.state.clockMs, input.id);
      if (input.type === "usage") {
        const before = balanceView(s, ctxAt(r.state.clockMs, cfg));
        const after = balanceView(r.state, ctxAt(r.state.clockMs, cfg));
        for (const which of ["5h", "7d"] as const) {
          const key = which === "5h" ? "window5h" : "window7d";
          const full = (w: (typeof after)["window5h"]) =>
            w !== null && w.resetAtMs !== null && w.usedMicros >= w.capMicros;
          if (!full(before[key]) && full(after[key])) {
            out.push(`${input.id}/window_cap_reached:${which}`);
          }
        }
      }
    }
    s = r.state;
  }
  return out;
}

/** The engine's ids, with time's threshold notices named as the observer names them. */
function observed(told: Notification[]): string[] {
  return told.map((n) =>
    n.inputId === null &&
    (n.kind === "low_credit" || n.kind === "credits_restored" || n.kind === "credits_exhausted")
      ? `${n.userId}:${n.kind}:*:${n.atMs}`
      : n.id,
  );
}

const CONFIGS = [
  ["shipped plans", config],
  [
    "overdraft carried, lead times of 6 hours and 1 hour",
    configWith({
      overdraft: "carry",
      bonusExpiringLeadTimes: [
        { name: "1h", beforeMs: HOUR_MS },
        { name: "6h", beforeMs: 6 * HOUR_MS },
      ],
    }),
  ],
] as const;

const RUNS = { numRuns: 200 };

describe.each(CONFIGS)("notifications (%s)", (_name, cfg) => {
  const opened = () => newMember(T0, cfg);

  it("equal what an observer derives from the balance, the ledger and the grants: each crossing once, none without one", () => {
    fc.assert(
      fc.property(scenarioArb, (scenario) => {
        const steps = toSteps(scenario);
        const { told } = run(opened(), steps, cfg);
        expect(observed(told)).toEqual(observe(steps, cfg));
      }),
      RUNS,
    );
  });

  it("every id is told once, and the same steps again tell nothing", () => {
    fc.assert(
      fc.property(scenarioArb, (scenario) => {
        const steps = toSteps(scenario);
        const once = run(opened(), steps, cfg);
        const ids = once.told.map((n) => n.id);
        expect(new Set(ids).size).toBe(ids.length);
        expect(run(once.state, steps, cfg).told).toEqual([]);
      }),
      RUNS,
    );
  });

  it("runs split anywhere, with the state stored and read back between, tell the same; so do sweeps at any times", () => {
    fc.assert(
      fc.property(scenarioArb, fc.array(fc.boolean()), (scenario, storedAfter) => {
        const steps = toSteps(scenario);
        const whole = run(opened(), steps, cfg);
        // One run per step; after the marked ones the state goes through the codec.
        let state = opened();
        const told: Notification[] = [];
        steps.forEach((step, i) => {
          const part = run(state, [step], cfg);
          state = storedAfter[i] ? decodeState(encodeState(part.state)) : part.state;
          told.push(...part.told);
        });
        expect(told).toEqual(whole.told);
        const inputsOnly = steps.filter((st, i) => st.input !== null || i === steps.length - 1);
        const unswept = run(opened(), inputsOnly, cfg);
        expect(unswept.told.map(said)).toEqual(whole.told.map(said));
      }),
      RUNS,
    );
  });
});

describe("the scenarios exercise every kind", () => {
  it("each kind is told in some runs", () => {
    const seen = new Map<string, number>();
    for (const scenario of fc.sample(scenarioArb, { numRuns: 300, seed: 7 })) {
      for (const n of run(newMember(), toSteps(scenario), config).told) {
        seen.set(n.kind, (seen.get(n.kind) ?? 0) + 1);
      }
    }
    expect([...seen.keys()].sort()).toEqual([
      "bonus_expired",
      "bonus_expiring",
      "credits_exhausted",
      "credits_restored",
      "low_credit",
      "refreshed",
      "window_cap_reached",
    ]);
  });
});
