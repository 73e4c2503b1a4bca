// Goal: the faster paths give the same answers as the plain definitions: version 1 states stored
// before still decode to the same state, the usage fingerprint equals the hash of its JSON text,
// apply never changes the state it is given (copy on write), ids with any characters round-trip,
// and the calendar-free deadline check agrees with the calendar.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { nextDeadlineMs, stepDue } from "./advance.ts";
import { apply } from "./apply.ts";
import { boundaryAt, earliestBoundaryMs } from "./calendar.ts";
import { decodeState, encodeState, STATE_CODEC_VERSION } from "./codec.ts";
import { fingerprintInput, fingerprintText, hash53 } from "./fingerprint.ts";
import { anyTimeMs, bonus, C, command, DAY, HOUR, MIN, T0, USER, usage } from "./fixtures.ts";
import { ctxAt, newMember } from "./harness.ts";
import type { EngineInput, MemberState, RecurrencePeriod, UsageEvent } from "./types.ts";

/** Written by the version 1 encoder for the inputs of `v1Inputs` (a refusal, an overdraft, a reset). */
const V1_TEXT =
  '[1,"u1",1768089600000,["pro",2,1768089600000,"tier:1768003200000","plus",null],[["tier:1768003200000",1,2,3000000000,100000000,1768003200000,null,0,0,[2,1768089600000,1]],["b1",0,1,5000000,0,1768003200000,259200000,0,3600000,[0,1768003200000,5]],["mig",1,3,4500000,0,1768089600000,5097600000,0,0,null]],0,[1768006800000,302000000],[1768006800000,302000000],1,[["task-e2",0,"ppt",1768006800000,1768006800000,2000000],["task-e1",0,null,1768006800000,1768006800000,300000000]],[["b1",1074241672201754,[[0,1,"b1",0,5000000,105000000,0,null,null,1768003200000,1768006800000]]],["e1",2139988626599456,[[0,0,"b1",0,-5000000,100000000,0,"agent","task-e1",1768006800000,1768006800000],[1,0,"tier:1768003200000",1,-100000000,0,0,-1,-1,-1,-1],[2,4,null,null,0,0,195000000,-1,-1,-1,-1]]],["e2",8699783645737882,[[0,4,null,null,0,0,2000000,"agent","task-e2",1768006800000,1768006800000]]],["sub",6007650686179681,[["u1:reset:b1:1768021200000",3,"b1",0,5000000,5000000,0,null,null,1768021200000,1768089600000],["sub#0",1,"tier:1768003200000",1,2900000000,2905000000,0,-1,-1,1768089600000,-1]]],["down",2453618554500092,[]],["mig",5626266475442543,[[0,5,"mig",1,4500000,2909500000,0,null,null,1768089600000,1768089600000]]],["nope",2153148588964389,null,[10,"grantId","no grant \\"missing\\""]]]]';

function v1State(): MemberState {
  let s = newMember();
  const run = (inputs: EngineInput[], now: number) => {
    for (const input of inputs) s = apply(s, input, ctxAt(now)).state;
  };
  run(
    [
      bonus("b1", T0, 5 * C, T0 + 3 * DAY, { recurrence: "5h" }),
      usage("e1", T0 + HOUR, 300 * C),
      usage("e2", T0 + HOUR, 2 * C, { feature: "agent", taskKind: "ppt" }),
    ],
    T0 + HOUR,
  );
  const S = T0 + DAY;
  run(
    [
      command("subscription_start", "sub", S, { tierId: "pro", billing: "annual" }),
      command("subscription_change", "down", S, { tierId: "plus" }),
      command("migrate_legacy", "mig", S, { unusedUses: { ppt: 3 } }),
      command("revoke_grant", "nope", S, { grantId: "missing" }),
    ],
    S,
  );
  return s;
}

describe("state codec versions", () => {
  it("a version 1 state stored before still decodes to the same state", () => {
    const s = v1State();
    const old = decodeState(V1_TEXT);
    // Version 1 kept no horizon times: its records are taken at the state's clock.
    const timeless = (x: MemberState) => ({
      ...x,
      applied: x.applied.toArray().map(({ atSec: _, ...record }) => record),
    });
    // Nor the sides last told (notifications.ts): read as none told.
    expect(timeless(old)).toEqual({
      ...timeless(s),
      lowCreditNotified: false,
      exhaustedNotified: false,
    });
    expect(old.applied.toArray().every((r) => r.atSec === Math.ceil(s.clockMs / 1000))).toBe(true);
    // Written back in the current version, and the same from there on.
    const text = encodeState(old);
    expect(text.startsWith(`[${STATE_CODEC_VERSION},`)).toBe(true);
    expect(decodeState(text)).toEqual(old);
    // A repeat after the upgrade answers the entries remembered in version 1.
    const again = apply(
      old,
      usage("e2", T0 + HOUR, 2 * C, { feature: "agent", taskKind: "ppt" }),
      ctxAt(T0 + DAY),
    );
    expect(again.outcome).toEqual({ status: "duplicate", entriesKnown: true });
    expect(again.entries).toEqual(s.applied.find((a) => a.id === "e2")!.entries);
  });

  it("ids, task ids and messages with any characters round-trip", () => {
    const odd = fc.string({ unit: "binary", minLength: 1, maxLength: 30 });
    fc.assert(
      fc.property(fc.array(odd, { minLength: 1, maxLength: 12 }), (ids) => {
        let s = newMember();
        ids.forEach((id, i) => {
          s = apply(
            s,
            usage(`${id}`, T0 + HOUR + i, 10_000, { taskId: id }),
            ctxAt(T0 + HOUR + i),
          ).state;
          s = apply(
            s,
            command("revoke_grant", `${id}!r`, T0 + HOUR + i, { grantId: id }),
            ctxAt(T0 + HOUR + i),
          ).state;
        });
        const text = encodeState(s);
        expect(() => JSON.parse(text)).not.toThrow();
        expect(decodeState(text)).toEqual(s);
        expect(encodeState(decodeState(text))).toBe(text);
      }),
      { numRuns: 200 },
    );
  });

  it("rejects corrupt bodies with state_invalid", () => {
    const text = encodeState(v1State());
    for (const cut of [5, 20, 60, text.length - 4]) {
      expect(() => decodeState(`${text.slice(0, cut)}"]`)).toThrow(/state is invalid/);
    }
    expect(() => decodeState(text.replace(/^\[(\d+),"/, '[$1,"!'))).toThrow(/state is invalid/);
    expect(() => decodeState('[2,"A",3]')).toThrow(/state is invalid/);
  });
});

describe("usage fingerprint", () => {
  const text = fc.oneof(
    fc.string({ unit: "binary", maxLength: 12 }),
    fc.constantFrom("a", "kimi-k2"),
  );
  const count = fc.oneof(
    fc.nat(),
    fc.constantFrom(0, 9, 10, 99_999_999, 100_000_000, 1_768_003_289_900, Number.MAX_SAFE_INTEGER),
  );
  it("equals hash53 of the JSON text for any values, odd ones included", () => {
    fc.assert(
      fc.property(
        text,
        text,
        fc.option(text),
        count,
        count,
        fc.oneof(count, fc.constantFrom(-1, 1.5, -0, Number.NaN)),
        (id, taskId, taskKind, input, output, at) => {
          const e = {
            type: "usage",
            id,
            userId: USER,
            taskId,
            feature: "agent",
            taskKind,
            model: "kimi-k2",
            inputTokens: input,
            outputTokens: output,
            cachedInputTokens: 3,
            eventAtMs: at,
          } as unknown as UsageEvent;
          expect(fingerprintInput(e)).toBe(hash53(fingerprintText(e)));
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe("copy on write", () => {
  const step = fc.oneof(
    fc.record({
      a: fc.constant("usage" as const),
      micros: fc.integer({ min: 0, max: 300 }),
      late: fc.integer({ min: -2, max: 8 }),
    }),
    fc.record({
      a: fc.constant("bonus" as const),
      life: fc.integer({ min: 1, max: 40 }),
      rec: fc.constantFrom(null, "5h" as const),
    }),
    fc.record({ a: fc.constant("start" as const) }),
    fc.record({ a: fc.constant("cancel" as const) }),
    fc.record({ a: fc.constant("adjust" as const), micros: fc.integer({ min: -50, max: 50 }) }),
    fc.record({ a: fc.constant("repeat" as const), k: fc.nat() }),
  );
  it("apply never changes the state it is given", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(step, fc.integer({ min: 0, max: 10 * HOUR })), { maxLength: 40 }),
        (steps) => {
          let s = newMember();
          let now = T0;
          const seen: EngineInput[] = [];
          steps.forEach(([x, dt], i) => {
            now += dt;
            const id = `i${i}`;
            let input: EngineInput;
            if (x.a === "usage") input = usage(id, now - x.late * MIN, (x.micros * C) / 10);
            else if (x.a === "bonus")
              input = bonus(id, now, 20 * C, now + x.life * HOUR, { recurrence: x.rec });
            else if (x.a === "start")
              input = command("subscription_start", id, now, {
                tierId: "plus",
                billing: "monthly",
              });
            else if (x.a === "cancel") input = command("subscription_cancel", id, now, {});
            else if (x.a === "adjust")
              input = command("adjust", id, now, {
                amountMicros: x.micros * C || 1,
                expiresAtMs: now + DAY,
                reason: "t",
              });
            else input = seen.length > 0 ? seen[x.k % seen.length]! : usage(id, now, 10);
            seen.push(input);
            // The id memory as its records: structuredClone cannot copy the shared memory.
            const plain = (x: MemberState) => ({ ...x, applied: x.applied.toArray() });
            const before = structuredClone(plain(s));
            const r = apply(s, input, ctxAt(now));
            expect(plain(s)).toEqual(before);
            s = r.state;
          });
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("deadline check without the calendar", () => {
  it("the month lower bound never passes the boundary", () => {
    fc.assert(
      fc.property(
        anyTimeMs,
        fc.integer({ min: 0, max: 400 }),
        fc.constantFrom<RecurrencePeriod>("1mo", "5h", "7d"),
        (anchorMs, n, period) => {
          expect(earliestBoundaryMs({ period, anchorMs, nextIndex: n })).toBeLessThanOrEqual(
            boundaryAt(period, anchorMs, n),
          );
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("stepDue agrees with the next deadline", () => {
    let s = newMember();
    s = apply(s, bonus("b", T0, 5 * C, T0 + 40 * DAY, { recurrence: "7d" }), ctxAt(T0)).state;
    s = apply(
      s,
      command("subscription_start", "p", T0, { tierId: "pro", billing: "monthly" }),
      ctxAt(T0),
    ).state;
    const deadline = nextDeadlineMs(s, ctxAt(T0))!;
    for (const t of [T0, deadline - 1, deadline, deadline + 1, T0 + 31 * DAY, T0 + 60 * DAY]) {
      expect(stepDue(s, t, 300_000)).toBe(deadline <= t);
    }
  });
});
