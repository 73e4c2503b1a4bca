// Goal: every credit command of docs/product-rules.md: bonus grants, subscription start / upgrade / downgrade /
// cancel, revoke, support adjustments and the legacy-quota migration (in full, only once).

import { describe, expect, it } from "vitest";
import { advanceTo } from "./advance.ts";
import { apply } from "./apply.ts";
import { bonus, C, command, DAY, HOUR, MIN, T0, usage } from "./fixtures.ts";
import { applyOk, ctxAt, newMember, refusedReason } from "./harness.ts";
import { admitTask, balanceView } from "./queries.ts";
import { ledgerBalanceMicros } from "./state.ts";
import type { MemberState } from "./types.ts";

/** 2026-02-05T00:00Z: a Plus monthly subscription starts here (anchor day 5). */
const S = Date.UTC(2026, 1, 5);

function plusMember(billing: "monthly" | "annual" = "monthly"): MemberState {
  return applyOk(
    newMember(),
    command("subscription_start", "sub1", S, { tierId: "plus", billing }),
    S,
  ).state;
}

describe("subscription start", () => {
  it("moves the member from free to the paid allowance now, anchored at the start", () => {
    let s = applyOk(newMember(), usage("e1", T0 + HOUR, 30 * C), T0 + HOUR).state;
    const r = applyOk(
      s,
      command("subscription_start", "sub1", S, { tierId: "plus", billing: "monthly" }),
      S,
    );
    // Feb 5 is before the free cycle's Feb 10 reset: 70 left of 100, +900 difference.
    expect(r.entries).toMatchObject([
      { kind: "grant", amountMicros: 900 * C, balanceAfterMicros: 970 * C },
    ]);
    s = r.state;
    expect(s.tier).toMatchObject({ tierId: "plus", billing: "monthly", anchorMs: S });
    expect(balanceView(s, ctxAt(S)).nextRefreshAtMs).toBe(Date.UTC(2026, 2, 5));
    expect(
      refusedReason(
        s,
        command("subscription_start", "sub2", S, { tierId: "pro", billing: "monthly" }),
        S,
      ),
    ).toBe("already_subscribed");
  });

  it("refuses an unknown tier naming the field", () => {
    const r = apply(
      newMember(),
      command("subscription_start", "x", T0, { tierId: "gold", billing: "monthly" }),
      ctxAt(T0),
    );
    expect(r.outcome).toMatchObject({ refusal: { reason: "unknown_tier", field: "tierId" } });
  });
});

describe("tier changes", () => {
  it("upgrade mid-cycle: the allowance becomes the new tier's and the remaining grows by the difference", () => {
    let s = applyOk(plusMember(), usage("e1", S + DAY, 400 * C), S + DAY).state;
    const r = applyOk(
      s,
      command("subscription_change", "up", S + 10 * DAY, { tierId: "pro" }),
      S + 10 * DAY,
    );
    expect(r.entries).toMatchObject([
      { kind: "grant", amountMicros: 2000 * C, balanceAfterMicros: 2600 * C },
    ]);
    s = r.state;
    expect(s.tier.tierId).toBe("pro");
    expect(s.grants[0]).toMatchObject({ amountMicros: 3000 * C, remainingMicros: 2600 * C });
    // Pro allows Agent Swarm at once.
    expect(admitTask(s, { feature: "agent", taskKind: "swarm" }, ctxAt(S + 10 * DAY))).toEqual({
      allowed: true,
    });
    // The next reset refills to the Pro allowance, on the same anchor.
    const next = advanceTo(s, ctxAt(Date.UTC(2026, 2, 5)));
    expect(next.entries).toMatchObject([
      { kind: "reset", amountMicros: 400 * C, detailMicros: 2600 * C },
    ]);
  });

  it("downgrade takes effect at the next refresh, not before", () => {
    let s = applyOk(
      plusMember(),
      command("subscription_change", "up", S, { tierId: "pro" }),
      S,
    ).state;
    s = applyOk(s, usage("e1", S + DAY, 100 * C), S + DAY).state;
    const r = applyOk(
      s,
      command("subscription_change", "down", S + 10 * DAY, { tierId: "plus" }),
      S + 10 * DAY,
    );
    expect(r.entries).toEqual([]);
    s = r.state;
    expect(s.tier).toMatchObject({ tierId: "pro", pendingTierId: "plus" });
    expect(balanceView(s, ctxAt(S + 20 * DAY)).remainingMicros).toBe(2900 * C);
    const reset = advanceTo(s, ctxAt(Date.UTC(2026, 2, 5)));
    expect(reset.entries).toMatchObject([
      {
        kind: "reset",
        amountMicros: 1000 * C - 2900 * C,
        detailMicros: 2900 * C,
        balanceAfterMicros: 1000 * C,
      },
    ]);
    expect(reset.state.tier).toMatchObject({ tierId: "plus", pendingTierId: null });
    expect(reset.state.grants[0]).toMatchObject({
      amountMicros: 1000 * C,
      remainingMicros: 1000 * C,
    });
  });

  it("changing back to the current tier drops a pending downgrade; the same tier otherwise is refused", () => {
    let s = applyOk(
      plusMember(),
      command("subscription_change", "up", S, { tierId: "pro" }),
      S,
    ).state;
    s = applyOk(s, command("subscription_change", "down", S, { tierId: "plus" }), S).state;
    s = applyOk(s, command("subscription_change", "stay", S, { tierId: "pro" }), S).state;
    expect(s.tier.pendingTierId).toBeNull();
    expect(refusedReason(s, command("subscription_change", "again", S, { tierId: "pro" }), S)).toBe(
      "same_tier",
    );
    expect(
      refusedReason(newMember(), command("subscription_change", "c", T0, { tierId: "pro" }), T0),
    ).toBe("no_subscription");
  });
});

describe("cancel", () => {
  it("keeps the paid grant to the end of the paid cycle, then falls back to the free tier", () => {
    const end = Date.UTC(2026, 2, 5);
    let s = applyOk(plusMember(), usage("e1", S + DAY, 100 * C), S + DAY).state;
    s = applyOk(s, command("subscription_cancel", "cancel", S + 10 * DAY, {}), S + 10 * DAY).state;
    expect(s.tier.cancelAtMs).toBe(end);
    expect(balanceView(s, ctxAt(S + 20 * DAY))).toMatchObject({
      tierId: "plus",
      remainingMicros: 900 * C,
      nextRefreshAtMs: end,
    });
    // At the end: the free grant starts; the paid remainder is forfeited after the lateness.
    const atEnd = advanceTo(s, ctxAt(end));
    expect(atEnd.entries).toMatchObject([
      { kind: "grant", grantId: `tier:${end}`, amountMicros: 100 * C },
    ]);
    expect(atEnd.state.tier).toMatchObject({ tierId: "free", billing: "free", cancelAtMs: null });
    // A late event from before the end still uses the paid grant.
    const late = applyOk(atEnd.state, usage("late", end - MIN, 1 * C), end + 2 * MIN);
    expect(late.entries).toMatchObject([{ kind: "debit", grantId: `tier:${T0}` }]);
    const after = advanceTo(late.state, ctxAt(end + 5 * MIN));
    expect(after.entries).toMatchObject([
      { kind: "expire", grantId: `tier:${T0}`, amountMicros: -899 * C },
    ]);
    expect(ledgerBalanceMicros(after.state)).toBe(100 * C);
    // The free tier keeps the anchor day.
    expect(balanceView(after.state, ctxAt(end + HOUR)).nextRefreshAtMs).toBe(Date.UTC(2026, 3, 5));
    expect(
      refusedReason(after.state, command("subscription_cancel", "c2", end + HOUR, {}), end + HOUR),
    ).toBe("no_subscription");
  });

  it("an annual subscriber keeps monthly resets until the end of the paid year", () => {
    let s = plusMember("annual");
    s = applyOk(s, command("subscription_cancel", "cancel", S + 40 * DAY, {}), S + 40 * DAY).state;
    expect(s.tier.cancelAtMs).toBe(Date.UTC(2027, 1, 5));
    s = applyOk(s, usage("e1", Date.UTC(2026, 5, 1), 10 * C), Date.UTC(2026, 5, 1)).state;
    const r = advanceTo(s, ctxAt(Date.UTC(2026, 5, 5)));
    expect(r.entries).toMatchObject([{ kind: "reset", amountMicros: 10 * C }]);
    expect(r.state.tier.tierId).toBe("plus");
    expect(
      refusedReason(
        s,
        command("subscription_cancel", "again", Date.UTC(2026, 5, 2), {}),
        Date.UTC(2026, 5, 2),
      ),
    ).toBe("already_cancelled");
  });
});

describe("bonus grants, revoke and adjustments", () => {
  it("a bonus grant is a grant entry; invalid ones are refused naming the field", () => {
    const r = applyOk(newMember(), bonus("b1", T0, 7 * C, T0 + 7 * DAY, { source: "trial" }), T0);
    expect(r.entries).toMatchObject([
      { id: "b1#0", kind: "grant", grantId: "b1", cls: "bonus", amountMicros: 7 * C },
    ]);
    const bad = apply(newMember(), bonus("b2", T0, 7 * C, T0), ctxAt(T0));
    expect(bad.outcome).toMatchObject({
      refusal: { reason: "invalid_input", field: "expiresAtMs" },
    });
    const zero = apply(newMember(), bonus("b3", T0, 0, T0 + DAY), ctxAt(T0));
    expect(zero.outcome).toMatchObject({
      refusal: { reason: "invalid_input", field: "amountMicros" },
    });
  });

  it("refuses a grant beyond MAX_GRANTS", async () => {
    const { MAX_GRANTS } = await import("./limits.ts");
    let s = newMember();
    for (let i = 1; i < MAX_GRANTS; i++) s = applyOk(s, bonus(`b${i}`, T0, C, T0 + DAY), T0).state;
    expect(refusedReason(s, bonus("one-more", T0, C, T0 + DAY), T0)).toBe("too_many_grants");
  });

  it("revoke removes a bonus and its remainder; the tier grant cannot be revoked", () => {
    let s = applyOk(newMember(), bonus("b1", T0, 7 * C, T0 + 7 * DAY), T0).state;
    s = applyOk(s, usage("e1", T0 + MIN, 2 * C), T0 + MIN).state;
    const r = applyOk(s, command("revoke_grant", "rv", T0 + HOUR, { grantId: "b1" }), T0 + HOUR);
    expect(r.entries).toMatchObject([
      { kind: "revoke", grantId: "b1", amountMicros: -5 * C, balanceAfterMicros: 100 * C },
    ]);
    expect(
      refusedReason(
        r.state,
        command("revoke_grant", "rv2", T0 + HOUR, { grantId: "b1" }),
        T0 + HOUR,
      ),
    ).toBe("unknown_grant");
    expect(
      refusedReason(s, command("revoke_grant", "rv3", T0, { grantId: `tier:${T0}` }), T0),
    ).toBe("cannot_revoke_tier_grant");
  });

  it("a positive adjustment is a new expiring grant; a negative one debits in debit order or is refused", () => {
    let s = applyOk(
      newMember(),
      command("adjust", "a1", T0, {
        amountMicros: 5 * C,
        expiresAtMs: T0 + 30 * DAY,
        reason: "sorry",
      }),
      T0,
    ).state;
    expect(ledgerBalanceMicros(s)).toBe(105 * C);
    const r = applyOk(
      s,
      command("adjust", "a2", T0, { amountMicros: -8 * C, expiresAtMs: null, reason: "fix" }),
      T0,
    );
    expect(r.entries.map((e) => [e.kind, e.grantId, e.amountMicros])).toEqual([
      ["adjust", "a1", -5 * C],
      ["adjust", `tier:${T0}`, -3 * C],
    ]);
    s = r.state;
    expect(
      refusedReason(
        s,
        command("adjust", "a3", T0, { amountMicros: -98 * C, expiresAtMs: null, reason: "x" }),
        T0,
      ),
    ).toBe("insufficient_balance");
  });
});

describe("migration from per-feature quotas", () => {
  const M = Date.UTC(2026, 0, 20);
  const migrate = (id: string, unusedUses: Record<string, number>) =>
    command("migrate_legacy", id, M, { unusedUses });

  it("converts unused legacy uses in full at the per-feature rate, as a subscription grant to the end of the next full cycle", () => {
    const r = applyOk(newMember(), migrate("mig", { ppt: 20, agent: 5, deep_research: 0 }), M);
    // 20 x 1.5 + 5 x 3 credits (deploy/config/plans.json).
    expect(r.entries).toMatchObject([
      { kind: "migration", grantId: "mig", cls: "subscription", amountMicros: 45 * C },
    ]);
    const grant = r.state.grants.find((g) => g.id === "mig");
    // Member anchored Jan 10: the current cycle ends Feb 10; the next full cycle ends Mar 10.
    expect(grant).toMatchObject({
      source: "migration",
      remainingMicros: 45 * C,
      expiresAtMs: Date.UTC(2026, 2, 10),
    });
    // Migration credits are used before the monthly allowance (earlier expiry inside the class).
    const d = applyOk(r.state, usage("e1", M + HOUR, 2 * C), M + HOUR);
    expect(d.entries.map((e) => e.grantId)).toEqual(["mig"]);
  });

  it("happens only once: a repeat is a duplicate, another migration is refused", () => {
    const first = applyOk(newMember(), migrate("mig", { ppt: 20 }), M);
    const again = apply(first.state, migrate("mig", { ppt: 20 }), ctxAt(M + HOUR));
    expect(again.outcome).toEqual({ status: "duplicate", entriesKnown: true });
    expect(again.entries).toEqual(first.entries);
    expect(refusedReason(first.state, migrate("mig-2", { ppt: 20 }), M + HOUR)).toBe(
      "already_migrated",
    );
    expect(ledgerBalanceMicros(first.state)).toBe(130 * C);
  });

  it("refuses a quota with no conversion rate, naming it", () => {
    const r = apply(newMember(), migrate("mig", { teleport: 3 }), ctxAt(M));
    expect(r.outcome).toMatchObject({
      refusal: { reason: "unknown_legacy_quota", field: "unusedUses.teleport" },
    });
  });
});
