// Goal: the engine's invariants over random sequences of usage events, commands, repeats, conflicts
// and clock moves (our small VOPR: a failure prints the seed and the shrunk sequence to replay).

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { advanceTo } from "./advance.ts";
import { apply } from "./apply.ts";
import { decodeState, encodeState } from "./codec.ts";
import type { EngineConfig } from "./config.ts";
import { C, config, configWith, DAY, HOUR, MIN, T0, USER } from "./fixtures.ts";
import { ctxAt, newMember } from "./harness.ts";
import { balanceView } from "./queries.ts";
import { isEligibleAt, ledgerBalanceMicros, openMember } from "./state.ts";
import { KINDS as LEDGER_KINDS } from "./state-codes.ts";
import type { EngineInput, LedgerEntry, MemberState, Outcome } from "./types.ts";

/** One step of a scenario: an input at a processing time, or the sweeper moving the clock. */
type Step = { kind: "input"; input: EngineInput; nowMs: number } | { kind: "clock"; nowMs: number };

const FEATURES = ["agent", "code", "chat", "image", "claw"] as const;
const TIERS = ["free", "plus", "pro", "ultra", "gold"] as const;

const actionArb = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      a: fc.constant("usage" as const),
      micros: fc.integer({ min: 0, max: 40 * C }),
      lateMs: fc.integer({ min: -MIN, max: 8 * MIN }),
      task: fc.integer({ min: 0, max: 14 }),
      feature: fc.constantFrom(...FEATURES),
      cached: fc.integer({ min: 0, max: 5000 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      a: fc.constant("bonus" as const),
      micros: fc.integer({ min: 1, max: 30 * C }),
      fromMs: fc.integer({ min: -HOUR, max: DAY }),
      lifeMs: fc.integer({ min: MIN, max: 20 * DAY }),
      priority: fc.integer({ min: 0, max: 2 }),
      recurrence: fc.constantFrom(null, null, "5h" as const, "7d" as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      a: fc.constant("start" as const),
      tier: fc.constantFrom(...TIERS),
      annual: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ a: fc.constant("change" as const), tier: fc.constantFrom(...TIERS) }),
  },
  { weight: 1, arbitrary: fc.record({ a: fc.constant("cancel" as const) }) },
  { weight: 1, arbitrary: fc.record({ a: fc.constant("revoke" as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      a: fc.constant("adjust" as const),
      micros: fc.integer({ min: -60 * C, max: 20 * C }).filter((x) => x !== 0),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      a: fc.constant("migrate" as const),
      ppt: fc.nat(30),
      agent: fc.nat(10),
      teleport: fc.nat(2),
    }),
  },
  { weight: 2, arbitrary: fc.record({ a: fc.constant("repeat" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ a: fc.constant("conflict" as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ a: fc.constant("clock" as const) }) },
);

const scenarioArb = fc.array(
  fc.record({
    dtMs: fc.oneof(fc.integer({ min: 0, max: 2 * HOUR }), fc.integer({ min: 0, max: 12 * DAY })),
    action: actionArb,
  }),
  { minLength: 1, maxLength: 45 },
);

type Scenario =
  fc.Arbitrary<typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never> extends fc.Arbitrary<
    infer U
  >
    ? U
    : never;

/** Turns generated actions into concrete steps with increasing processing times. */
function buildSteps(scenario: Scenario): Step[] {
  const steps: Step[] = [];
  const inputs: EngineInput[] = [];
  const grantIds: string[] = [];
  let now = T0;
  scenario.forEach(({ dtMs, action }, i) => {
    now += dtMs;
    const id = `i${i}`;
    const base = { id, userId: USER, atMs: now };
    let input: EngineInput | null = null;
    switch (action.a) {
      case "usage":
        input = {
          type: "usage",
          id,
          userId: USER,
          taskId: `t${action.task}`,
          feature: action.feature,
          taskKind: null,
          model: action.feature === "image" ? "image-1" : "kimi-k2",
          inputTokens: Math.floor(action.micros / 10),
          outputTokens: 0,
          cachedInputTokens: action.cached,
          eventAtMs: Math.max(0, now - action.lateMs),
        };
        break;
      case "bonus":
        grantIds.push(id);
        input = {
          ...base,
          type: "grant_bonus",
          source: "promotion",
          amountMicros: action.micros,
          effectiveFromMs: now + action.fromMs,
          expiresAtMs: now + action.fromMs + action.lifeMs,
          priority: action.priority,
          recurrence: action.recurrence,
        };
        break;
      case "start":
        input = {
          ...base,
          type: "subscription_start",
          tierId: action.tier,
          billing: action.annual ? "annual" : "monthly",
        };
        break;
      case "change":
        input = { ...base, type: "subscription_change", tierId: action.tier };
        break;
      case "cancel":
        input = { ...base, type: "subscription_cancel" };
        break;
      case "revoke":
        input = {
          ...base,
          type: "revoke_grant",
          grantId: grantIds.length ? grantIds[action.pick % grantIds.length]! : "none",
        };
        break;
      case "adjust":
        if (action.micros > 0) grantIds.push(id);
        input = {
          ...base,
          type: "adjust",
          amountMicros: action.micros,
          expiresAtMs: now + 10 * DAY,
          reason: "support",
        };
        break;
      case "migrate": {
        const unusedUses: Record<string, number> = { ppt: action.ppt, agent: action.agent };
        if (action.teleport > 1) unusedUses.teleport = 1;
        input = { ...base, type: "migrate_legacy", unusedUses };
        break;
      }
      case "repeat":
        if (inputs.length) input = inputs[action.pick % inputs.length]!;
        break;
      case "conflict":
        if (inputs.length) {
          const original = inputs[action.pick % inputs.length]!;
          input = { ...original, atMs: now + 1, eventAtMs: now + 1 } as unknown as EngineInput;
        }
        break;
      case "clock":
        break;
    }
    if (input === null) steps.push({ kind: "clock", nowMs: now });
    else {
      inputs.push(input);
      steps.push({ kind: "input", input, nowMs: now });
    }
  });
  return steps;
}

interface Run {
  state: MemberState;
  /** Entries of applied inputs and clock moves, in order (what the ledger receives). */
  entries: LedgerEntry[];
  outcomes: Outcome["status"][];
}

function run(
  state: MemberState,
  steps: Step[],
  cfg: EngineConfig,
  check?: (
    before: MemberState,
    step: Step,
    after: MemberState,
    entries: LedgerEntry[],
    outcome: Outcome | null,
  ) => void,
): Run {
  const entries: LedgerEntry[] = [];
  const outcomes: Outcome["status"][] = [];
  let s = state;
  for (const step of steps) {
    const before = s;
    if (step.kind === "clock") {
      const r = advanceTo(s, ctxAt(step.nowMs, cfg));
      s = r.state;
      entries.push(...r.entries);
      check?.(before, step, s, r.entries, null);
    } else {
      const r = apply(s, step.input, ctxAt(step.nowMs, cfg));
      s = r.state;
      outcomes.push(r.outcome.status);
      if (r.outcome.status === "applied") entries.push(...r.entries);
      check?.(before, step, s, r.entries, r.outcome);
    }
  }
  return { state: s, entries, outcomes };
}

const sum = (entries: LedgerEntry[]) => entries.reduce((acc, e) => acc + e.amountMicros, 0);

function opened(cfg: EngineConfig) {
  return openMember(USER, T0, ctxAt(T0, cfg));
}

const CONFIGS = [
  ["overdraft forgiven", config],
  ["overdraft carried", configWith({ overdraft: "carry" })],
] as const;

const RUNS = { numRuns: 200 };

describe.each(CONFIGS)("invariants (%s)", (_name, cfg) => {
  it("the sum of ledger entries equals the balance; grants stay within 0..amount; bonus before subscription", () => {
    fc.assert(
      fc.property(scenarioArb, (scenario) => {
        const open = opened(cfg);
        const ledger = [...open.entries];
        const seenIds = new Set(ledger.map((e) => e.id));
        run(open.state, buildSteps(scenario), cfg, (before, step, after, entries, outcome) => {
          if (outcome === null || outcome.status === "applied") {
            for (const e of entries) {
              expect(seenIds.has(e.id), `entry id ${e.id} written once`).toBe(false);
              seenIds.add(e.id);
              ledger.push(e);
            }
          }
          const balance = ledgerBalanceMicros(after);
          expect(sum(ledger)).toBe(balance);
          if (ledger.length > 0) expect(ledger.at(-1)!.balanceAfterMicros).toBe(balance);
          for (const g of after.grants) {
            expect(g.remainingMicros).toBeGreaterThanOrEqual(0);
            expect(g.remainingMicros).toBeLessThanOrEqual(g.amountMicros);
          }
          expect(after.debtMicros).toBeGreaterThanOrEqual(0);
          // No subscription debit while an eligible bonus still has credits.
          if (
            step.kind === "input" &&
            step.input.type === "usage" &&
            outcome?.status === "applied"
          ) {
            const nowMs = Math.max(step.nowMs, before.clockMs);
            const atMs = Math.min(
              nowMs,
              Math.max(step.input.eventAtMs, nowMs - cfg.plans.allowedLatenessMs),
            );
            if (entries.some((e) => e.kind === "debit" && e.cls === "subscription")) {
              const unspentBonus = after.grants.filter(
                (g) => g.cls === "bonus" && g.remainingMicros > 0 && isEligibleAt(g, atMs),
              );
              expect(unspentBonus).toEqual([]);
            }
          }
          const view = balanceView(after, ctxAt(after.clockMs, cfg));
          expect(view.percent).toBeGreaterThanOrEqual(0);
          expect(view.percent).toBeLessThanOrEqual(100);
        });
      }),
      RUNS,
    );
  });

  it("applying any prefix twice equals applying it once", () => {
    fc.assert(
      fc.property(scenarioArb, fc.nat(), (scenario, cut) => {
        const steps = buildSteps(scenario);
        const prefix = steps.slice(0, cut % (steps.length + 1));
        const once = run(opened(cfg).state, prefix, cfg);
        const twice = run(once.state, prefix, cfg);
        expect(twice.state).toEqual(once.state);
        expect(twice.entries).toEqual([]);
        expect(twice.outcomes.every((o) => o !== "applied")).toBe(true);
      }),
      RUNS,
    );
  });

  it("one call equals the same sequence split anywhere, with the state serialized and read back between", () => {
    fc.assert(
      fc.property(scenarioArb, fc.nat(), (scenario, cut) => {
        const steps = buildSteps(scenario);
        const k = cut % (steps.length + 1);
        const whole = run(opened(cfg).state, steps, cfg);
        const first = run(opened(cfg).state, steps.slice(0, k), cfg);
        const stored = encodeState(first.state);
        const second = run(decodeState(stored), steps.slice(k), cfg);
        expect(encodeState(second.state)).toBe(encodeState(whole.state));
        expect(second.state).toEqual(whole.state);
        expect([...first.entries, ...second.entries]).toEqual(whole.entries);
      }),
      RUNS,
    );
  });

  it("serialization round-trips exactly after any sequence", () => {
    fc.assert(
      fc.property(scenarioArb, (scenario) => {
        const { state } = run(opened(cfg).state, buildSteps(scenario), cfg);
        const text = encodeState(state);
        expect(decodeState(text)).toEqual(state);
        expect(encodeState(decodeState(text))).toBe(text);
      }),
      RUNS,
    );
  });
});

describe("the scenarios exercise the rules", () => {
  it("most kinds of entries and outcomes occur", () => {
    const kinds = new Map<string, number>();
    const outcomes = new Map<string, number>();
    fc.assert(
      fc.property(scenarioArb, (scenario) => {
        const r = run(
          opened(config).state,
          buildSteps(scenario),
          config,
          (_b, _s, _a, entries, outcome) => {
            if (outcome?.status === "refused")
              outcomes.set(outcome.refusal.reason, (outcomes.get(outcome.refusal.reason) ?? 0) + 1);
            else if (outcome) outcomes.set(outcome.status, (outcomes.get(outcome.status) ?? 0) + 1);
            for (const e of entries) kinds.set(e.kind, (kinds.get(e.kind) ?? 0) + 1);
          },
        );
        return r !== null;
      }),
      { numRuns: 200, seed: 42 },
    );
    if (process.env.ENGINE_STATS)
      console.log(Object.fromEntries(kinds), Object.fromEntries(outcomes));
    for (const kind of LEDGER_KINDS) {
      expect(kinds.get(kind) ?? 0, kind).toBeGreaterThan(0);
    }
    for (const o of [
      "applied",
      "duplicate",
      "conflict",
      "insufficient_balance",
      "already_migrated",
    ]) {
      expect(outcomes.get(o) ?? 0, o).toBeGreaterThan(0);
    }
  });
});

describe("sweeper and events agree", () => {
  it("sweeping at any times in between changes neither the final state nor the ledger sum", () => {
    fc.assert(
      fc.property(scenarioArb, (scenario) => {
        const steps = buildSteps(scenario).filter((s) => s.kind === "input");
        const withSweeps = buildSteps(scenario);
        const a = run(newMember(), steps, config);
        const b = run(newMember(), withSweeps, config);
        const last = Math.max(a.state.clockMs, b.state.clockMs);
        const fa = advanceTo(a.state, ctxAt(last));
        const fb = advanceTo(b.state, ctxAt(last));
        expect(ledgerBalanceMicros(fa.state)).toBe(ledgerBalanceMicros(fb.state));
        expect(sum([...a.entries, ...fa.entries])).toBe(sum([...b.entries, ...fb.entries]));
      }),
      RUNS,
    );
  });
});
