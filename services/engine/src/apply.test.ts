// Goal: the usage rules of docs/product-rules.md through apply(): debit order, expiry and lateness, overdraft,
// and one id = one effect. Each test reads like the rule it proves.

import { describe, expect, it } from "vitest";
import { advanceTo } from "./advance.ts";
import { apply } from "./apply.ts";
import { bonus, C, configWith, DAY, HOUR, MIN, T0, usage } from "./fixtures.ts";
import { applyOk, ctxAt, newMember, withoutMemory } from "./harness.ts";
import { ledgerBalanceMicros } from "./state.ts";

describe("debit order", () => {
  it("bonus before subscription: a bonus is used up before the tier allowance is touched", () => {
    let s = applyOk(newMember(), bonus("b1", T0, 10 * C, T0 + 7 * DAY), T0).state;
    const r = applyOk(s, usage("e1", T0 + HOUR, 15 * C), T0 + HOUR);
    expect(r.entries.map((e) => [e.kind, e.grantId, e.cls, e.amountMicros])).toEqual([
      ["debit", "b1", "bonus", -10 * C],
      ["debit", `tier:${T0}`, "subscription", -5 * C],
    ]);
    s = r.state;
    expect(ledgerBalanceMicros(s)).toBe(95 * C);
    expect(r.entries.at(-1)?.balanceAfterMicros).toBe(95 * C);
  });

  it("earliest-expiring bonus first", () => {
    let s = newMember();
    s = applyOk(s, bonus("late", T0, 5 * C, T0 + 30 * DAY), T0).state;
    s = applyOk(s, bonus("soon", T0, 5 * C, T0 + 7 * DAY), T0).state;
    const r = applyOk(s, usage("e1", T0 + MIN, 3 * C), T0 + MIN);
    expect(r.entries.map((e) => e.grantId)).toEqual(["soon"]);
  });

  it("same expiry: priority, then oldest, then grant id", () => {
    let s = newMember();
    const exp = T0 + 7 * DAY;
    s = applyOk(s, bonus("z-old", T0, 1 * C, exp, { priority: 1 }), T0).state;
    s = applyOk(s, bonus("c", T0 + 1, 1 * C, exp, { priority: 1 }), T0 + 1).state;
    s = applyOk(s, bonus("b", T0 + 1, 1 * C, exp, { priority: 1 }), T0 + 1).state;
    s = applyOk(s, bonus("p0", T0 + 2, 1 * C, exp, { priority: 0 }), T0 + 2).state;
    const r = applyOk(s, usage("e1", T0 + MIN, 4 * C), T0 + MIN);
    expect(r.entries.map((e) => e.grantId)).toEqual(["p0", "z-old", "b", "c"]);
  });

  it("a grant not yet effective is not debited", () => {
    let s = applyOk(
      newMember(),
      bonus("future", T0, 5 * C, T0 + 9 * DAY, { effectiveFromMs: T0 + DAY }),
      T0,
    ).state;
    let r = applyOk(s, usage("e1", T0 + HOUR, 1 * C), T0 + HOUR);
    expect(r.entries.map((e) => e.grantId)).toEqual([`tier:${T0}`]);
    s = r.state;
    r = applyOk(s, usage("e2", T0 + DAY, 1 * C), T0 + DAY);
    expect(r.entries.map((e) => e.grantId)).toEqual(["future"]);
  });
});

describe("expiry and lateness", () => {
  const E = T0 + DAY;
  const withBonus = () => applyOk(newMember(), bonus("b1", T0, 10 * C, E), T0).state;

  it("a bonus granted after its expiry and lateness is forfeited in the same apply; an advance to that time changes nothing", () => {
    // Found by "applying any prefix twice equals applying it once" (seed -731853706).
    const late = bonus("b0", T0, 1, T0 - 5 * MIN, { effectiveFromMs: T0 - 6 * MIN });
    const r = applyOk(newMember(), late, T0);
    expect(r.entries.map((e) => e.kind)).toEqual(["grant", "expire"]);
    expect(r.state.grants.some((g) => g.id === "b0")).toBe(false);
    expect(advanceTo(r.state, ctxAt(T0)).entries).toEqual([]);
    expect(ledgerBalanceMicros(r.state)).toBe(ledgerBalanceMicros(newMember()));
  });

  it("an expired bonus is never debited and its remainder is forfeited exactly once, after the lateness", () => {
    let s = withBonus();
    const r1 = applyOk(s, usage("e1", E + MIN, 2 * C), E + MIN);
    expect(r1.entries.map((e) => e.grantId)).toEqual([`tier:${T0}`]);
    s = r1.state;
    expect(advanceTo(s, ctxAt(E + 5 * MIN - 1)).entries).toEqual([]);
    const r2 = advanceTo(s, ctxAt(E + 5 * MIN));
    expect(r2.entries).toMatchObject([
      {
        kind: "expire",
        grantId: "b1",
        amountMicros: -10 * C,
        eventAtMs: E,
        balanceAfterMicros: 98 * C,
      },
    ]);
    s = r2.state;
    expect(advanceTo(s, ctxAt(E + HOUR)).entries).toEqual([]);
    const r3 = applyOk(s, usage("e2", E + HOUR, 1 * C), E + HOUR);
    expect(r3.entries.map((e) => e.kind)).toEqual(["debit"]);
    expect(ledgerBalanceMicros(r3.state)).toBe(97 * C);
  });

  it("the sweeper and an event crossing the same expiry write the same entry id", () => {
    const s = withBonus();
    const viaSweep = advanceTo(s, ctxAt(E + HOUR)).entries[0];
    const viaEvent = applyOk(s, usage("e1", E + HOUR, 1 * C), E + HOUR).entries[0];
    expect(viaEvent).toEqual(viaSweep);
  });

  it("a late event inside the lateness window still uses the grant active at its time", () => {
    const s = withBonus();
    const r = applyOk(s, usage("late", E - 2 * MIN, 3 * C), E + 3 * MIN);
    expect(r.entries).toMatchObject([
      { kind: "debit", grantId: "b1", amountMicros: -3 * C, eventAtMs: E - 2 * MIN },
    ]);
    // Then the remainder (7) is forfeited once the lateness is over.
    const swept = advanceTo(r.state, ctxAt(E + 5 * MIN));
    expect(swept.entries).toMatchObject([{ kind: "expire", amountMicros: -7 * C }]);
  });

  it("an event later than the lateness no longer finds the forfeited grant", () => {
    const s = withBonus();
    const r = applyOk(s, usage("very-late", E - 2 * MIN, 3 * C), E + 6 * MIN);
    expect(r.entries.map((e) => [e.kind, e.grantId])).toEqual([
      ["expire", "b1"],
      ["debit", `tier:${T0}`],
    ]);
  });
});

describe("running out", () => {
  it("overdraft is recorded and forgiven by default", () => {
    const r = applyOk(newMember(), usage("big", T0 + HOUR, 120 * C), T0 + HOUR);
    expect(r.entries).toMatchObject([
      { kind: "debit", amountMicros: -100 * C, balanceAfterMicros: 0 },
      {
        kind: "overdraft",
        amountMicros: 0,
        detailMicros: 20 * C,
        balanceAfterMicros: 0,
        grantId: null,
      },
    ]);
    expect(r.state.debtMicros).toBe(0);
    // The next month starts full.
    const next = advanceTo(r.state, ctxAt(Date.UTC(2026, 1, 10)));
    expect(next.entries).toMatchObject([{ kind: "reset", amountMicros: 100 * C, detailMicros: 0 }]);
    expect(ledgerBalanceMicros(next.state)).toBe(100 * C);
  });

  it("under overdraft 'carry' the shortfall is owed and repaid from the next refresh", () => {
    const cfg = configWith({ overdraft: "carry" });
    const s = newMember(T0, cfg);
    const r = applyOk(s, usage("big", T0 + HOUR, 120 * C), T0 + HOUR, cfg);
    expect(r.entries).toMatchObject([
      { kind: "debit", amountMicros: -100 * C, balanceAfterMicros: 0 },
      {
        kind: "overdraft",
        amountMicros: -20 * C,
        detailMicros: 20 * C,
        balanceAfterMicros: -20 * C,
      },
    ]);
    expect(r.state.debtMicros).toBe(20 * C);
    const next = advanceTo(r.state, ctxAt(Date.UTC(2026, 1, 10), cfg));
    expect(next.entries).toMatchObject([
      { kind: "reset", amountMicros: 100 * C, balanceAfterMicros: 80 * C },
    ]);
    expect(next.state.debtMicros).toBe(0);
    expect(next.state.grants[0]?.remainingMicros).toBe(80 * C);
  });
});

describe("one id, one effect", () => {
  it("a refused input is remembered: its repeat is refused the same even when it would now pass", () => {
    const s = newMember();
    const tooMuch = {
      type: "adjust",
      id: "a1",
      userId: "u1",
      atMs: T0,
      amountMicros: -150 * C,
      expiresAtMs: null,
      reason: "x",
    } as const;
    const first = apply(s, tooMuch, ctxAt(T0));
    expect(first.outcome).toMatchObject({
      status: "refused",
      refusal: { reason: "insufficient_balance" },
    });
    const richer = applyOk(first.state, bonus("b1", T0, 100 * C, T0 + DAY), T0).state;
    expect(apply(richer, tooMuch, ctxAt(T0)).outcome).toEqual(first.outcome);
    expect(ledgerBalanceMicros(richer)).toBe(200 * C);
  });

  it("the same id and content again is a duplicate answering the first entries, changing nothing", () => {
    const first = applyOk(newMember(), usage("e1", T0 + HOUR, 5 * C), T0 + HOUR);
    const again = apply(first.state, usage("e1", T0 + HOUR, 5 * C), ctxAt(T0 + 2 * HOUR));
    expect(again.outcome).toEqual({ status: "duplicate", entriesKnown: true });
    expect(again.entries).toEqual(first.entries);
    expect(again.state).toBe(first.state);
  });

  it("the same id with other content is refused as a conflict and never applied", () => {
    const first = applyOk(newMember(), usage("e1", T0 + HOUR, 5 * C), T0 + HOUR);
    const other = apply(first.state, usage("e1", T0 + HOUR, 6 * C), ctxAt(T0 + 2 * HOUR));
    expect(other.outcome).toMatchObject({
      status: "refused",
      refusal: { reason: "conflict", field: "id" },
    });
    expect(other.entries).toEqual([]);
    expect(other.state).toBe(first.state);
  });

  it("an id is checked before any other rule (a conflict even when the content is invalid)", () => {
    const first = applyOk(newMember(), usage("e1", T0, 10), T0);
    const bad = { ...usage("e1", T0, 10), inputTokens: -1 };
    expect(apply(first.state, bad, ctxAt(T0)).outcome).toMatchObject({
      refusal: { reason: "conflict" },
    });
  });

  it("keeps MAX_REMEMBERED_IDS ids with their text, and older ones as compact records", async () => {
    const { MAX_REMEMBERED_IDS } = await import("./limits.ts");
    let s = newMember();
    for (let i = 0; i < MAX_REMEMBERED_IDS + 5; i++)
      s = applyOk(s, usage(`e${i}`, T0, 10), T0).state;
    expect(s.applied.length).toBe(MAX_REMEMBERED_IDS);
    expect(s.applied.at(0)?.id).toBe("e5");
    expect(s.applied.compact.count).toBe(5);
    expect(apply(s, usage("e0", T0, 10), ctxAt(T0)).outcome.status).toBe("duplicate");
  });
});

describe("bad input is refused naming the field, and changes nothing", () => {
  it.each([
    ["inputTokens", { inputTokens: -1 }, "invalid_input"],
    ["outputTokens", { outputTokens: 1.5 }, "invalid_input"],
    ["feature", { feature: "teleport" }, "unknown_feature"],
    ["model", { model: "gpt-unknown" }, "unknown_model"],
    ["taskKind", { taskKind: "ppt", feature: "code" }, "invalid_input"],
    ["userId", { userId: "someone-else" }, "user_mismatch"],
  ])("%s", (field, change, reason) => {
    const s = newMember();
    const r = apply(s, { ...usage("e1", T0, 10), ...change } as never, ctxAt(T0));
    expect(r.outcome).toMatchObject({ status: "refused", refusal: { reason, field } });
    expect(r.entries).toEqual([]);
    expect(withoutMemory(r.state)).toEqual(withoutMemory(s));
  });
});
