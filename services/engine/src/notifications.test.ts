// Goal: each notification kind is told at its crossing, once, with the fields a member or service
// needs (the pause as admission answers it, the forfeited amount, the lead time), from apply and
// from the sweeper alike; a hovering balance is told once per crossing; repeats tell nothing.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { advanceTo, nextDeadlineMs } from "./advance.ts";
import { apply } from "./apply.ts";
import { parsePlans } from "./config.ts";
import { bonus, C, command, config, configWith, DAY, HOUR, T0, USER, usage } from "./fixtures.ts";
import { ctxAt, newMember } from "./harness.ts";
import { admitTask } from "./queries.ts";
import {
  type EngineInput,
  type MemberState,
  NOTIFICATION_KINDS,
  type Notification,
} from "./types.ts";

/** The shipped plans without usage windows: threshold tests are not crossed by window caps. */
const uncapped = configWith({
  tiers: config.plans.tiers.map((t) => ({
    ...t,
    window5hCapMicros: null,
    window7dCapMicros: null,
  })),
});
const FEB10 = Date.UTC(2026, 1, 10);
const LATENESS = config.plans.allowedLatenessMs;

/** Applies an input that must be applied; returns the state and what it told. */
function told(state: MemberState, input: EngineInput, nowMs: number, cfg = config) {
  const r = apply(state, input, ctxAt(nowMs, cfg));
  expect(r.outcome.status).toBe("applied");
  return { state: r.state, told: r.notifications };
}

const kinds = (ns: readonly Notification[]) => ns.map((n) => n.kind);

describe("low_credit and credits_restored", () => {
  it("told once when the balance crosses under the threshold, not again for each event under it", () => {
    let s = told(newMember(), usage("e1", T0 + HOUR, 85 * C), T0 + HOUR, uncapped).state;
    const r = told(s, usage("e2", T0 + 2 * HOUR, 6 * C), T0 + 2 * HOUR, uncapped);
    expect(r.told).toEqual([
      {
        id: "e2/low_credit",
        kind: "low_credit",
        userId: USER,
        inputId: "e2",
        atMs: T0 + 2 * HOUR,
        processedAtMs: T0 + 2 * HOUR,
        remainingMicros: 9 * C,
        capacityMicros: 100 * C,
        nextRefreshAtMs: FEB10,
        pause: null,
        window: null,
        windowResetAtMs: null,
        grantId: null,
        amountMicros: null,
        expiresAtMs: null,
        leadTime: null,
      },
    ]);
    s = r.state;
    for (const id of ["e3", "e4"]) {
      const next = told(s, usage(id, T0 + 3 * HOUR, 1 * C), T0 + 3 * HOUR, uncapped);
      expect(next.told).toEqual([]);
      s = next.state;
    }
  });

  it("a balance hovering around the threshold is told once per crossing", () => {
    let s = told(newMember(), usage("e1", T0 + HOUR, 91 * C), T0 + HOUR, uncapped).state;
    const steps: [EngineInput, string[]][] = [
      [bonus("b1", T0 + HOUR, 10 * C, T0 + 20 * DAY), ["credits_restored"]], // 19 of 110
      [usage("e2", T0 + HOUR, 2 * C), []], // 17 of 110
      [usage("e3", T0 + HOUR, 7 * C), ["low_credit"]], // 10 of 110
      [usage("e4", T0 + HOUR, 1 * C), []],
      [bonus("b2", T0 + HOUR, 5 * C, T0 + 20 * DAY), ["credits_restored"]], // 14 of 115
      [usage("e5", T0 + HOUR, 3 * C), ["low_credit"]], // 11 of 115
    ];
    for (const [input, expected] of steps) {
      const r = told(s, input, T0 + HOUR, uncapped);
      expect(kinds(r.told), input.id).toEqual(expected);
      if (expected.length > 0) expect(r.told[0]!.id).toBe(`${input.id}/${expected[0]}`);
      s = r.state;
    }
  });

  it("a monthly reset restores the credits: refreshed, then credits_restored, with time's ids", () => {
    const s = told(newMember(), usage("e1", T0 + HOUR, 95 * C), T0 + HOUR, uncapped).state;
    expect(s.lowCreditNotified).toBe(true);
    expect(nextDeadlineMs(s, { config: uncapped })).toBe(FEB10);
    const swept = advanceTo(s, ctxAt(FEB10 + HOUR, uncapped));
    expect(swept.entries.map((e) => e.id)).toEqual([`${USER}:reset:tier:${T0}:${FEB10}`]);
    expect(swept.notifications.map((n) => [n.id, n.inputId, n.atMs, n.processedAtMs])).toEqual([
      [`${USER}:refreshed:tier:${T0}:${FEB10}`, null, FEB10, FEB10 + HOUR],
      [`${USER}:credits_restored:tier:${T0}:${FEB10}`, null, FEB10, FEB10 + HOUR],
    ]);
    const refreshed = swept.notifications[0]!;
    expect([refreshed.grantId, refreshed.amountMicros, refreshed.remainingMicros]).toEqual([
      `tier:${T0}`,
      100 * C,
      100 * C,
    ]);
    // A usage event crossing the same reset tells the same things, with the same ids.
    const viaEvent = told(s, usage("e2", FEB10 + HOUR, 1 * C), FEB10 + HOUR, uncapped);
    expect(viaEvent.told.map((n) => n.id)).toEqual(swept.notifications.map((n) => n.id));
  });

  it("an upgrade restores the credits, told with the command's id", () => {
    const s = told(newMember(), usage("e1", T0 + HOUR, 95 * C), T0 + HOUR, uncapped).state;
    const start = command("subscription_start", "sub", T0 + DAY, {
      tierId: "plus",
      billing: "monthly",
    });
    const r = told(s, start, T0 + DAY, uncapped);
    expect(r.told.map((n) => [n.id, n.remainingMicros, n.capacityMicros])).toEqual([
      ["sub/credits_restored", 905 * C, 1_000 * C],
    ]);
  });
});

describe("credits_exhausted", () => {
  it("tells that new tasks are paused, with admission's answer: next refresh and the upgrade", () => {
    const s = told(newMember(), usage("e1", T0 + HOUR, 50 * C), T0 + HOUR, uncapped).state;
    const r = told(s, usage("e2", T0 + 2 * HOUR, 60 * C), T0 + 2 * HOUR, uncapped);
    expect(kinds(r.told)).toEqual(["low_credit", "credits_exhausted"]);
    const exhausted = r.told[1]!;
    expect(exhausted.id).toBe("e2/credits_exhausted");
    expect(exhausted.remainingMicros).toBe(0);
    const admission = admitTask(
      r.state,
      { feature: "chat", taskKind: null },
      ctxAt(T0 + 2 * HOUR, uncapped),
    );
    expect(exhausted.pause).toEqual(admission);
    expect(exhausted.pause).toMatchObject({
      reason: "out_of_credits",
      retryAtMs: FEB10,
      nextRefreshAtMs: FEB10,
      upgradeTierId: "plus",
    });
  });

  it("is told again only after credits came back in between", () => {
    let s = told(newMember(), usage("e1", T0 + HOUR, 100 * C), T0 + HOUR, uncapped).state;
    expect(s.exhaustedNotified).toBe(true);
    let r = told(s, usage("e2", T0 + HOUR, 1 * C), T0 + HOUR, uncapped);
    expect(r.told).toEqual([]); // still paused: nothing new
    // A small grant un-pauses without leaving the low side: nothing to tell...
    r = told(r.state, bonus("b1", T0 + HOUR, 2 * C, T0 + 9 * DAY), T0 + HOUR, uncapped);
    expect(r.told).toEqual([]);
    expect(r.state.exhaustedNotified).toBe(false);
    // ...and spending it pauses again: a new crossing.
    r = told(r.state, usage("e3", T0 + HOUR, 2 * C), T0 + HOUR, uncapped);
    expect(kinds(r.told)).toEqual(["credits_exhausted"]);
    s = r.state;
    expect(s.lowCreditNotified && s.exhaustedNotified).toBe(true);
  });

  it("carried overdraft counts: a refresh that only repays debt leaves the member paused", () => {
    const carry = configWith({
      overdraft: "carry",
      tiers: uncapped.plans.tiers,
    });
    const s = told(newMember(), usage("e1", T0 + HOUR, 150 * C), T0 + HOUR, carry).state;
    expect(s.debtMicros).toBe(50 * C);
    const swept = advanceTo(s, ctxAt(FEB10, carry));
    // 100 refilled, 50 repaid: 50 of 100 left, above the threshold, no longer paused.
    expect(kinds(swept.notifications)).toEqual(["refreshed", "credits_restored"]);
    expect(swept.notifications[1]!.remainingMicros).toBe(50 * C);
  });
});

describe("window_cap_reached", () => {
  it("told once when usage fills a window, with its reset time and admission's answer", () => {
    let s = told(newMember(), usage("e1", T0 + HOUR, 20 * C), T0 + HOUR).state;
    const r = told(s, usage("e2", T0 + 2 * HOUR, 6 * C), T0 + 2 * HOUR);
    expect(kinds(r.told)).toEqual(["window_cap_reached"]);
    const full = r.told[0]!;
    expect([full.id, full.window, full.windowResetAtMs]).toEqual([
      "e2/window_cap_reached:5h",
      "5h",
      T0 + 6 * HOUR,
    ]);
    expect(full.pause).toEqual(
      admitTask(r.state, { feature: "chat", taskKind: null }, ctxAt(T0 + 2 * HOUR)),
    );
    s = r.state;
    // Usage of running tasks in the same full window tells nothing more.
    s = told(s, usage("e3", T0 + 3 * HOUR, 1 * C), T0 + 3 * HOUR).state;
    // The 7-day cap (60) is reached in a later 5-hour window: that window fills too.
    const week = told(s, usage("e4", T0 + 7 * HOUR, 34 * C), T0 + 7 * HOUR);
    expect(week.told.map((n) => n.id)).toEqual([
      "e4/window_cap_reached:5h",
      "e4/window_cap_reached:7d",
    ]);
    expect(week.told[1]!.windowResetAtMs).toBe(T0 + HOUR + 7 * DAY);
    expect(week.told[1]!.pause).toMatchObject({
      reason: "window_cap",
      retryAtMs: T0 + HOUR + 7 * DAY,
    });
  });
});

describe("bonus_expiring and bonus_expired", () => {
  const EXP = T0 + 10 * DAY;

  it("an idle member is woken at each lead time, then at the expiry with the forfeited amount", () => {
    let s = told(newMember(), bonus("b1", T0, 10 * C, EXP), T0).state;
    s = told(s, usage("e1", T0 + HOUR, 4 * C), T0 + HOUR).state;
    const expected = [
      [EXP - 3 * DAY, "bonus_expiring", `${USER}:bonus_expiring:b1:${EXP}:3d`, "3d"],
      [EXP - DAY, "bonus_expiring", `${USER}:bonus_expiring:b1:${EXP}:24h`, "24h"],
      [EXP + LATENESS, "bonus_expired", `${USER}:bonus_expired:b1:${EXP + LATENESS}`, null],
    ] as const;
    for (const [at, kind, id, lead] of expected) {
      const deadline = nextDeadlineMs(s, { config: ctxAt(T0).config });
      expect(deadline).toBe(at);
      expect(advanceTo(s, ctxAt(at - 1)).notifications).toEqual([]);
      const swept = advanceTo(s, ctxAt(at));
      expect(swept.notifications).toHaveLength(1);
      const n = swept.notifications[0]!;
      expect([n.kind, n.id, n.leadTime, n.grantId, n.amountMicros, n.expiresAtMs]).toEqual([
        kind,
        id,
        lead,
        "b1",
        6 * C,
        EXP,
      ]);
      expect(swept.entries.map((e) => e.kind)).toEqual(kind === "bonus_expired" ? ["expire"] : []);
      s = swept.state;
    }
  });

  it("an event passing the lead times tells them with the same ids as the sweeper", () => {
    const s = told(newMember(), bonus("b1", T0, 10 * C, EXP), T0).state;
    const r = told(s, usage("e1", EXP - HOUR, 1 * C), EXP - HOUR);
    expect(r.told.map((n) => n.id)).toEqual([
      `${USER}:bonus_expiring:b1:${EXP}:3d`,
      `${USER}:bonus_expiring:b1:${EXP}:24h`,
    ]);
    expect(r.told.map((n) => n.atMs)).toEqual([EXP - 3 * DAY, EXP - DAY]);
    expect(told(r.state, usage("e2", EXP - LATENESS, 1 * C), EXP - LATENESS).told).toEqual([]);
  });

  it("a bonus granted inside a lead time, or spent, is not told about for that lead time", () => {
    let s = told(newMember(), bonus("spent", T0, 1 * C, T0 + 4 * DAY), T0).state;
    s = told(s, usage("e1", T0 + HOUR, 1 * C), T0 + HOUR).state;
    s = told(s, bonus("late", T0 + 3 * DAY, 10 * C, T0 + 5 * DAY), T0 + 3 * DAY).state;
    const tellings = advanceTo(s, ctxAt(T0 + 6 * DAY)).notifications;
    expect(tellings.map((n) => [n.kind, n.grantId, n.leadTime])).toEqual([
      ["bonus_expiring", "late", "24h"],
      ["bonus_expired", "late", null],
    ]);
  });

  it("the lead times come from the plans; none when the plans name none", () => {
    const hourly = configWith({ bonusExpiringLeadTimes: [{ name: "1h", beforeMs: HOUR }] });
    const s = told(newMember(), bonus("b1", T0, 10 * C, EXP), T0, hourly).state;
    expect(nextDeadlineMs(s, { config: hourly })).toBe(EXP - HOUR);
    const none = configWith({ bonusExpiringLeadTimes: [] });
    expect(nextDeadlineMs(s, { config: none })).toBe(EXP + LATENESS);
  });

  it("plans' lead times are validated: names, durations, no repeats, at most four", () => {
    const plans = (leads: unknown) =>
      parsePlans({ ...structuredClone(config.plans), bonusExpiringLeadTimes: leads }, "plans.json");
    expect(() => plans([{ name: "3 days", beforeMs: DAY }])).toThrow(
      /bonusExpiringLeadTimes\/0\/name/,
    );
    expect(() => plans([{ name: "0", beforeMs: 0 }])).toThrow(
      /bonusExpiringLeadTimes\/0\/beforeMs/,
    );
    expect(() =>
      plans([
        { name: "a", beforeMs: DAY },
        { name: "a", beforeMs: HOUR },
      ]),
    ).toThrow(/bonusExpiringLeadTimes\/1: lead time "a" repeats/);
    expect(() =>
      plans(["1", "2", "3", "4", "5"].map((name, i) => ({ name, beforeMs: (i + 1) * HOUR }))),
    ).toThrow(/bonusExpiringLeadTimes/);
    expect(plans([{ name: "7d", beforeMs: 7 * DAY }]).bonusExpiringLeadTimes).toHaveLength(1);
  });
});

describe("refreshed", () => {
  it("a recurring bonus that was spent is refreshed and told; one that was not is not", () => {
    let s = told(newMember(), bonus("b5", T0, 5 * C, T0 + 2 * DAY, { recurrence: "5h" }), T0).state;
    s = told(s, usage("e1", T0 + HOUR, 3 * C), T0 + HOUR).state;
    const first = advanceTo(s, ctxAt(T0 + 5 * HOUR));
    expect(first.notifications.map((n) => [n.id, n.amountMicros, n.remainingMicros])).toEqual([
      [`${USER}:refreshed:b5:${T0 + 5 * HOUR}`, 5 * C, 105 * C],
    ]);
    expect(advanceTo(first.state, ctxAt(T0 + 10 * HOUR)).notifications).toEqual([]);
  });
});

describe("what is not told", () => {
  it("a repeat, a conflict and a refusal tell nothing; a refusal's passed time is told later", () => {
    const s = told(newMember(), usage("e1", T0 + HOUR, 95 * C), T0 + HOUR).state;
    const again = apply(s, usage("e1", T0 + HOUR, 95 * C), ctxAt(T0 + 2 * HOUR));
    expect(again.outcome.status).toBe("duplicate");
    expect(again.notifications).toEqual([]);
    const conflict = apply(s, usage("e1", T0 + HOUR, 5 * C), ctxAt(T0 + 2 * HOUR));
    expect(conflict.outcome.status).toBe("refused");
    expect(conflict.notifications).toEqual([]);
    const refused = apply(
      s,
      command("revoke_grant", "r1", FEB10, { grantId: "none" }),
      ctxAt(FEB10),
    );
    expect(refused.outcome.status).toBe("refused");
    expect(refused.notifications).toEqual([]);
    expect(kinds(advanceTo(refused.state, ctxAt(FEB10)).notifications)).toEqual([
      "refreshed",
      "credits_restored",
    ]);
  });

  it("an apply that tells nothing shares one empty list", () => {
    const s = newMember();
    const a = apply(s, usage("e1", T0 + HOUR, 1 * C), ctxAt(T0 + HOUR));
    const b = apply(a.state, usage("e2", T0 + HOUR, 1 * C), ctxAt(T0 + HOUR));
    expect(a.notifications).toBe(b.notifications);
    expect(Object.isFrozen(a.notifications)).toBe(true);
  });
});

describe("the notifications topic's schema (schemas/notification.avsc)", () => {
  interface AvroField {
    name: string;
    doc?: string;
    type: unknown;
  }
  const schema = JSON.parse(
    readFileSync(new URL("../../../schemas/notification.avsc", import.meta.url), "utf8"),
  ) as { doc: string; fields: AvroField[] };
  /** The engine's field in Avro: times without the unit (timestamp-millis), the id named. */
  const avroName = (key: string) =>
    key === "id" ? "notificationId" : key === "atMs" ? "occurredAt" : key.replace(/AtMs$/, "At");

  it("has every field the engine tells, each documented, and the kinds as its enum", () => {
    const s = told(newMember(), usage("e1", T0 + HOUR, 120 * C), T0 + HOUR);
    const exhausted = s.told.find((n) => n.kind === "credits_exhausted")!;
    const fields = new Map(schema.fields.map((f) => [f.name, f]));
    expect(
      Object.keys(exhausted)
        .map(avroName)
        .filter((k) => !fields.has(k)),
    ).toEqual([]);
    expect(schema.fields.filter((f) => !f.doc)).toEqual([]);
    const kind = fields.get("kind")!.type as { symbols: string[] };
    expect(kind.symbols).toEqual([...NOTIFICATION_KINDS]);
    const pause = (fields.get("pause")!.type as [null, { fields: AvroField[] }])[1];
    const pauseKeys = Object.keys(exhausted.pause!).filter((k) => k !== "allowed");
    expect(pause.fields.map((f) => f.name)).toEqual(pauseKeys.map(avroName));
    expect(schema.doc).toMatch(/Keyed by userId/);
  });
});
