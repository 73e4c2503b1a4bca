// Goal: what a member sees and whether a new task may start: the balance view, window usage and
// reset times, the last 10 transactions grouped by task, and admission with reason, times, upgrade.

import { describe, expect, it } from "vitest";
import { apply } from "./apply.ts";
import { bonus, C, command, DAY, HOUR, MIN, T0, usage } from "./fixtures.ts";
import { applyOk, ctxAt, newMember } from "./harness.ts";
import { admitTask, balanceView, recentTransactions } from "./queries.ts";

const FEB10 = Date.UTC(2026, 1, 10);

describe("balance view", () => {
  it("percentage is remaining over tier allowance plus every active bonus; remaining by class; bonuses with expiry", () => {
    let s = applyOk(newMember(), bonus("b1", T0, 50 * C, T0 + 7 * DAY), T0).state;
    s = applyOk(s, usage("e1", T0 + HOUR, 60 * C), T0 + HOUR).state;
    const v = balanceView(s, ctxAt(T0 + 2 * HOUR));
    expect(v).toMatchObject({
      tierId: "free",
      remainingMicros: 90 * C,
      capacityMicros: 150 * C,
      percent: 60,
      basisPoints: 6000,
      remainingByClass: { bonusMicros: 0, subscriptionMicros: 90 * C },
      bonusGrants: [
        { grantId: "b1", amountMicros: 50 * C, remainingMicros: 0, expiresAtMs: T0 + 7 * DAY },
      ],
      nextRefreshAtMs: FEB10,
      lowCredit: false,
      lowCreditThresholdPercent: 10,
    });
    // Once the bonus has expired it leaves the capacity.
    expect(balanceView(s, ctxAt(T0 + 8 * DAY))).toMatchObject({
      capacityMicros: 100 * C,
      percent: 90,
      bonusGrants: [],
    });
  });

  it("flags low credit under 10% of capacity, and not at exactly 10%", () => {
    const at10 = applyOk(newMember(), usage("e1", T0 + HOUR, 90 * C), T0 + HOUR).state;
    expect(balanceView(at10, ctxAt(T0 + 2 * HOUR))).toMatchObject({
      percent: 10,
      lowCredit: false,
    });
    const under = applyOk(at10, usage("e2", T0 + 2 * HOUR, 10), T0 + 2 * HOUR).state;
    expect(balanceView(under, ctxAt(T0 + 2 * HOUR))).toMatchObject({
      percent: 9,
      basisPoints: 999,
      lowCredit: true,
    });
  });

  it("the next refresh date is the earliest reset or refresh of any grant", () => {
    const s = applyOk(
      newMember(),
      bonus("h5", T0, C, T0 + 2 * DAY, { recurrence: "5h" }),
      T0,
    ).state;
    expect(balanceView(s, ctxAt(T0 + HOUR)).nextRefreshAtMs).toBe(T0 + 5 * HOUR);
  });

  it("is computed at the asked time even if no sweep ran (lazy time)", () => {
    const s = applyOk(newMember(), usage("e1", T0 + HOUR, 60 * C), T0 + HOUR).state;
    expect(balanceView(s, ctxAt(FEB10 + MIN))).toMatchObject({
      remainingMicros: 100 * C,
      percent: 100,
    });
  });
});

describe("usage windows", () => {
  it("a window starts at the first usage after the previous ended and says when it resets", () => {
    let s = applyOk(newMember(), usage("e1", T0 + HOUR, 5 * C), T0 + HOUR).state;
    s = applyOk(s, usage("e2", T0 + 3 * HOUR, 5 * C), T0 + 3 * HOUR).state;
    let v = balanceView(s, ctxAt(T0 + 4 * HOUR));
    expect(v.window5h).toEqual({ capMicros: 25 * C, usedMicros: 10 * C, resetAtMs: T0 + 6 * HOUR });
    expect(v.window7d).toEqual({
      capMicros: 60 * C,
      usedMicros: 10 * C,
      resetAtMs: T0 + HOUR + 7 * DAY,
    });
    // After the 5-hour window ended nothing runs until the next usage, which starts a new one.
    v = balanceView(s, ctxAt(T0 + 7 * HOUR));
    expect(v.window5h).toEqual({ capMicros: 25 * C, usedMicros: 0, resetAtMs: null });
    s = applyOk(s, usage("e3", T0 + 8 * HOUR, 1 * C), T0 + 8 * HOUR).state;
    expect(balanceView(s, ctxAt(T0 + 8 * HOUR)).window5h).toEqual({
      capMicros: 25 * C,
      usedMicros: C,
      resetAtMs: T0 + 13 * HOUR,
    });
  });

  it("window cap: new tasks refused until the window resets; usage of a running task is still debited", () => {
    let s = applyOk(newMember(), usage("e1", T0 + HOUR, 25 * C), T0 + HOUR).state;
    expect(admitTask(s, { feature: "chat", taskKind: null }, ctxAt(T0 + 2 * HOUR))).toEqual({
      allowed: false,
      reason: "window_cap",
      retryAtMs: T0 + 6 * HOUR,
      windowResetAtMs: T0 + 6 * HOUR,
      nextRefreshAtMs: FEB10,
      upgradeTierId: "plus",
    });
    const r = apply(
      s,
      usage("e2", T0 + 2 * HOUR, 1 * C, { taskId: "task-e1" }),
      ctxAt(T0 + 2 * HOUR),
    );
    expect(r.entries).toMatchObject([{ kind: "debit", amountMicros: -C }]);
    s = r.state;
    expect(admitTask(s, { feature: "chat", taskKind: null }, ctxAt(T0 + 6 * HOUR))).toEqual({
      allowed: true,
    });
  });

  it("the 7-day cap says when the 7-day window resets", () => {
    let s = newMember();
    for (let i = 0; i < 3; i++)
      s = applyOk(s, usage(`e${i}`, T0 + i * 6 * HOUR, 21 * C), T0 + i * 6 * HOUR).state;
    expect(admitTask(s, { feature: "code", taskKind: null }, ctxAt(T0 + 13 * HOUR))).toMatchObject({
      allowed: false,
      reason: "window_cap",
      windowResetAtMs: T0 + 7 * DAY,
      upgradeTierId: "plus",
    });
  });
});

describe("admission", () => {
  it("out of credits: paused, with the next refresh and the upgrade option", () => {
    const s = applyOk(newMember(), usage("e1", T0 + HOUR, 100 * C), T0 + HOUR).state;
    // Eight days on, both windows are over; the credits are not.
    expect(admitTask(s, { feature: "chat", taskKind: null }, ctxAt(T0 + 8 * DAY))).toEqual({
      allowed: false,
      reason: "out_of_credits",
      retryAtMs: FEB10,
      nextRefreshAtMs: FEB10,
      windowResetAtMs: null,
      upgradeTierId: "plus",
    });
    expect(admitTask(s, { feature: "chat", taskKind: null }, ctxAt(FEB10))).toEqual({
      allowed: true,
    });
  });

  it("features outside the tier: Agent Swarm needs Pro, Claw needs Ultra", () => {
    const s = newMember();
    expect(admitTask(s, { feature: "agent", taskKind: "swarm" }, ctxAt(T0))).toMatchObject({
      allowed: false,
      reason: "feature_not_in_tier",
      upgradeTierId: "pro",
      retryAtMs: null,
    });
    expect(admitTask(s, { feature: "claw", taskKind: null }, ctxAt(T0))).toMatchObject({
      reason: "feature_not_in_tier",
      upgradeTierId: "ultra",
    });
    expect(admitTask(s, { feature: "agent", taskKind: "ppt" }, ctxAt(T0))).toEqual({
      allowed: true,
    });
    const ultra = applyOk(
      s,
      command("subscription_start", "s", T0, { tierId: "ultra", billing: "monthly" }),
      T0,
    ).state;
    expect(admitTask(ultra, { feature: "claw", taskKind: null }, ctxAt(T0))).toEqual({
      allowed: true,
    });
  });
});

describe("usage history", () => {
  it("the last 10 transactions, one per task (the sum of its usage events), newest first", () => {
    let s = newMember();
    for (let i = 0; i < 12; i++) {
      s = applyOk(
        s,
        usage(`e${i}`, T0 + i * MIN, 10_000, { taskId: `t${i}`, feature: i % 2 ? "code" : "chat" }),
        T0 + i * MIN,
      ).state;
    }
    s = applyOk(
      s,
      usage("e5b", T0 + 20 * MIN, 20_000, { taskId: "t5", feature: "code" }),
      T0 + 20 * MIN,
    ).state;
    const history = recentTransactions(s);
    expect(history).toHaveLength(10);
    expect(history[0]).toEqual({
      taskId: "t5",
      feature: "code",
      taskKind: null,
      atMs: T0 + 20 * MIN,
      creditsMicros: 30_000,
    });
    expect(history.map((t) => t.taskId)).toEqual([
      "t5",
      "t11",
      "t10",
      "t9",
      "t8",
      "t7",
      "t6",
      "t4",
      "t3",
      "t2",
    ]);
  });
});
