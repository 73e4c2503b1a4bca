// Goal: lazy time. Monthly resets at the cycle anchor (monthly and annual subscribers, month-end
// clamp, UTC), recurring refreshes of 5 hours and 7 days, and the sweeper's next deadline.

import { describe, expect, it } from "vitest";
import { advanceTo, nextDeadlineMs } from "./advance.ts";
import { addMonthsClamped, firstBoundaryIndexAfter } from "./calendar.ts";
import { bonus, C, command, config, DAY, HOUR, MIN, T0, usage } from "./fixtures.ts";
import { applyOk, ctxAt, memberAfter, newMember } from "./harness.ts";
import { balanceView } from "./queries.ts";

describe("calendar", () => {
  it("a cycle anchored on the 31st resets on the last day of shorter months and returns to the 31st", () => {
    const jan31 = Date.UTC(2026, 0, 31, 15, 30);
    expect(new Date(addMonthsClamped(jan31, 1)).toISOString()).toBe("2026-02-28T15:30:00.000Z");
    expect(new Date(addMonthsClamped(jan31, 2)).toISOString()).toBe("2026-03-31T15:30:00.000Z");
    expect(new Date(addMonthsClamped(jan31, 3)).toISOString()).toBe("2026-04-30T15:30:00.000Z");
    expect(new Date(addMonthsClamped(Date.UTC(2028, 0, 31), 1)).toISOString()).toBe(
      "2028-02-29T00:00:00.000Z",
    );
    expect(new Date(addMonthsClamped(Date.UTC(2026, 11, 30), 2)).toISOString()).toBe(
      "2027-02-28T00:00:00.000Z",
    );
  });

  it("finds the first boundary after a time (and the yearly one)", () => {
    const jan31 = Date.UTC(2026, 0, 31);
    expect(firstBoundaryIndexAfter("1mo", jan31, jan31)).toBe(1);
    expect(firstBoundaryIndexAfter("1mo", jan31, Date.UTC(2026, 1, 28))).toBe(2);
    expect(firstBoundaryIndexAfter("1mo", jan31, Date.UTC(2026, 1, 28) - 1)).toBe(1);
    expect(firstBoundaryIndexAfter("1mo", jan31, Date.UTC(2026, 5, 1), 12)).toBe(12);
    expect(firstBoundaryIndexAfter("5h", 0, 5 * HOUR)).toBe(2);
  });

  it("a member signed up on Jan 31 is reset on Feb 28 and Mar 31", () => {
    const jan31 = Date.UTC(2026, 0, 31, 9);
    let s = newMember(jan31);
    s = applyOk(s, usage("e1", jan31 + HOUR, 10 * C), jan31 + HOUR).state;
    expect(advanceTo(s, ctxAt(Date.UTC(2026, 1, 28, 9) - 1)).entries).toEqual([]);
    const feb = advanceTo(s, ctxAt(Date.UTC(2026, 1, 28, 9)));
    expect(feb.entries).toMatchObject([{ kind: "reset", eventAtMs: Date.UTC(2026, 1, 28, 9) }]);
    expect(balanceView(feb.state, ctxAt(Date.UTC(2026, 2, 1))).nextRefreshAtMs).toBe(
      Date.UTC(2026, 2, 31, 9),
    );
  });
});

describe("monthly resets", () => {
  it("an annual subscriber is reset every month at the anchor; unspent credits do not roll over", () => {
    const S = Date.UTC(2026, 2, 15);
    let s = applyOk(
      newMember(),
      command("subscription_start", "sub", S, { tierId: "plus", billing: "annual" }),
      S,
    ).state;
    for (let m = 0; m < 13; m++) {
      const at = Date.UTC(2026, 2 + m, 20);
      s = applyOk(s, usage(`e${m}`, at, (m + 1) * C), at).state;
      const r = advanceTo(s, ctxAt(Date.UTC(2026, 3 + m, 15)));
      // What was dropped is recorded; the allowance comes back in full.
      expect(r.entries).toMatchObject([
        {
          kind: "reset",
          amountMicros: (m + 1) * C,
          detailMicros: 1000 * C - (m + 1) * C,
          eventAtMs: Date.UTC(2026, 3 + m, 15),
        },
      ]);
      s = r.state;
      expect(s.grants[0]?.remainingMicros).toBe(1000 * C);
    }
  });

  it("months without usage write no entries, and a long gap runs each boundary once", () => {
    let s = applyOk(newMember(), usage("e1", T0 + HOUR, 10 * C), T0 + HOUR).state;
    const r = advanceTo(s, ctxAt(Date.UTC(2027, 0, 11)));
    expect(r.entries).toHaveLength(1);
    s = r.state;
    expect(balanceView(s, ctxAt(Date.UTC(2027, 0, 11))).nextRefreshAtMs).toBe(
      Date.UTC(2027, 1, 10),
    );
  });

  it("time never goes back: an earlier clock changes nothing", () => {
    const s = advanceTo(newMember(), ctxAt(T0 + DAY)).state;
    expect(advanceTo(s, ctxAt(T0)).state).toBe(s);
  });
});

describe("recurring refreshes", () => {
  it("a 5-hour allowance refills every 5 hours from its start, each refill with its entry", () => {
    const s = memberAfter(
      bonus("h5", T0, 2 * C, T0 + 7 * DAY, { recurrence: "5h" }),
      usage("e1", T0 + HOUR, 1500_000),
    );
    expect(nextDeadlineMs(s, { config })).toBe(T0 + 5 * HOUR);
    const r = advanceTo(s, ctxAt(T0 + 5 * HOUR));
    expect(r.entries).toMatchObject([
      {
        kind: "reset",
        grantId: "h5",
        amountMicros: 1500_000,
        detailMicros: 500_000,
        id: `u1:reset:h5:${T0 + 5 * HOUR}`,
      },
    ]);
    // Idle periods afterwards are skipped without entries.
    const idle = advanceTo(r.state, ctxAt(T0 + 3 * DAY));
    expect(idle.entries).toEqual([]);
    expect(nextDeadlineMs(idle.state, { config })).toBe(T0 + 75 * HOUR);
  });

  it("a 7-day allowance refills weekly and stops at its expiry", () => {
    let s = memberAfter(
      bonus("w7", T0, 5 * C, T0 + 15 * DAY, { recurrence: "7d" }),
      usage("e1", T0 + HOUR, 5 * C),
    );
    s = advanceTo(s, ctxAt(T0 + 7 * DAY)).state;
    s = applyOk(s, usage("e2", T0 + 8 * DAY, 5 * C), T0 + 8 * DAY).state;
    const r = advanceTo(s, ctxAt(T0 + 15 * DAY + 5 * MIN));
    expect(r.entries.map((e) => [e.kind, e.grantId, e.amountMicros])).toEqual([
      ["reset", "w7", 5 * C],
      ["expire", "w7", -5 * C],
    ]);
  });
});

describe("next deadline for the sweeper", () => {
  it("is the earliest reset, refresh, fall-back or expiry plus lateness", () => {
    let s = newMember();
    expect(nextDeadlineMs(s, { config })).toBe(Date.UTC(2026, 1, 10));
    s = applyOk(s, bonus("b", T0, C, T0 + DAY), T0).state;
    expect(nextDeadlineMs(s, { config })).toBe(T0 + DAY + 5 * MIN);
  });
});
