// Goal: "one id, one effect" holds for the duplicate horizon in time, whatever the number of newer
// inputs of the member: a repeat accepted within the horizon of its first copy is a duplicate (a
// conflict with other content), one whose own time is older than the horizon is refused
// `too_old`, never applied; the horizon runs on acceptance times, not on processing time.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { apply } from "./apply.ts";
import { decodeState, encodeState } from "./codec.ts";
import { C, configWith, DAY, HOUR, MIN, T0, usage } from "./fixtures.ts";
import { ctxAt, newMember } from "./harness.ts";
import type { EngineConfig } from "./index.ts";
import { MAX_REMEMBERED_IDS } from "./limits.ts";
import type { LedgerEntry, MemberState, Outcome, UsageEvent } from "./types.ts";

const HORIZON_MS = 6 * HOUR;
const cfg: EngineConfig = configWith({ dedupeHorizonMs: HORIZON_MS });

/** One delivery: the event and when it was accepted (= processed here). */
interface Delivery {
  event: UsageEvent;
  acceptedAtMs: number;
}

function run(state: MemberState, deliveries: readonly Delivery[], config = cfg) {
  let s = state;
  const entries: LedgerEntry[] = [];
  const outcomes: Outcome[] = [];
  for (const d of deliveries) {
    const r = apply(s, d.event, ctxAt(d.acceptedAtMs, config), d.acceptedAtMs);
    s = r.state;
    if (r.outcome.status === "applied") entries.push(...r.entries);
    outcomes.push(r.outcome);
  }
  return { state: s, entries, outcomes };
}

/** A member with enough credits for any run here (a year's bonus of 1,000,000 credits). */
function richMember(): MemberState {
  const s = newMember(T0, cfg);
  return apply(
    s,
    {
      type: "grant_bonus",
      id: "rich",
      userId: s.userId,
      atMs: T0,
      source: "promotion",
      amountMicros: 1_000_000 * C,
      effectiveFromMs: T0,
      expiresAtMs: T0 + 365 * DAY,
      priority: 0,
      recurrence: null,
    },
    ctxAt(T0, cfg),
  ).state;
}

/** `count` events of one member, `gapMs` apart from T0 + 1 minute, each accepted at its own time. */
function events(count: number, gapMs: number): Delivery[] {
  return Array.from({ length: count }, (_, i) => {
    const at = T0 + MIN + i * gapMs;
    return { event: usage(`e${i}`, at, 10_000 + 10 * (i % 7)), acceptedAtMs: at };
  });
}

describe("duplicate horizon", () => {
  it("a repeat after thousands of newer inputs is a duplicate, also after the state is stored and read back", () => {
    const first = events(3_000, 5_000); // 3,000 events over about 4 hours
    const whole = run(richMember(), first);
    const stored = decodeState(encodeState(whole.state));
    const last = first.at(-1)!.acceptedAtMs;
    for (const k of [0, 1, 500, 2_935, 2_999]) {
      const again = { event: first[k]!.event, acceptedAtMs: last + HOUR };
      for (const s of [whole.state, stored]) {
        const r = apply(s, again.event, ctxAt(again.acceptedAtMs, cfg), again.acceptedAtMs);
        expect(r.outcome.status, `e${k}`).toBe("duplicate");
        expect(r.entries.length === 0 || k >= 3_000 - 8).toBe(true);
        // The same id with other content: a conflict, never applied.
        const other = { ...again.event, inputTokens: again.event.inputTokens + 1 };
        const c = apply(s, other, ctxAt(again.acceptedAtMs, cfg), again.acceptedAtMs);
        expect(c.outcome).toMatchObject({ status: "refused", refusal: { reason: "conflict" } });
      }
    }
    expect(whole.state.applied.length).toBe(MAX_REMEMBERED_IDS);
    expect(whole.state.applied.compact.count).toBe(3_001 - MAX_REMEMBERED_IDS);
  });

  it("refuses too_old an input whose own time is past the horizon of the member's acceptance clock, changing nothing", () => {
    const first = events(100, MIN);
    const s = run(richMember(), first).state;
    const clock = first.at(-1)!.acceptedAtMs;
    const old = usage("late", clock - HORIZON_MS - 1, 10_000);
    const r = apply(s, old, ctxAt(clock, cfg), clock);
    expect(r.outcome).toMatchObject({
      status: "refused",
      refusal: { reason: "too_old", field: "eventAtMs" },
    });
    expect(r.state).toBe(s);
    // Accepted earlier (by a producer's clock) makes no difference: the member's clock decides.
    expect(apply(s, old, ctxAt(clock, cfg), clock - 2 * HORIZON_MS).outcome.status).toBe("refused");
    // At the edge it is still applied.
    const edge = usage("edge", clock - HORIZON_MS, 10_000);
    expect(apply(s, edge, ctxAt(clock, cfg), clock).outcome.status).toBe("applied");
  });

  it("judges age by acceptance time, not processing time: a consumer days behind refuses nothing", () => {
    const first = events(200, 10 * MIN); // about 33 hours of usage, each accepted on time
    const processedLate = 5 * DAY;
    let s = richMember();
    for (const d of first) {
      const r = apply(s, d.event, ctxAt(d.acceptedAtMs + processedLate, cfg), d.acceptedAtMs);
      expect(r.outcome.status).toBe("applied");
      s = r.state;
    }
    // A copy accepted within the horizon of its first copy (after every other record: Kafka's
    // order is acceptance order), processed days later: a duplicate.
    const copy = first[170]!;
    const acceptedAtMs = copy.acceptedAtMs + HORIZON_MS - MIN;
    const r = apply(s, copy.event, ctxAt(acceptedAtMs + processedLate, cfg), acceptedAtMs);
    expect(r.outcome.status).toBe("duplicate");
  });

  it("prunes what the horizon has passed: memory grows with volume × horizon, not with the run", () => {
    const first = events(5_000, 30_000); // one event every 30 s for about 42 hours
    const s = run(richMember(), first).state;
    // A 6-hour horizon at one event per 30 s holds about 720 ids, plus up to an eighth in slack.
    const held = s.applied.compact.count + s.applied.length;
    expect(held).toBeGreaterThanOrEqual(720);
    expect(held).toBeLessThanOrEqual(720 + 90 + 2);
  });

  it("property: duplicates re-inserted at any distance inside the horizon change nothing; past it they are refused too_old", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 20 * MIN }), { minLength: 1, maxLength: 400 }),
        fc.array(
          fc.record({
            of: fc.nat(),
            // How long after its first copy a repeat is accepted: inside or past the horizon.
            afterMs: fc.oneof(
              fc.integer({ min: 0, max: HORIZON_MS }),
              fc.integer({ min: HORIZON_MS + 1, max: 3 * HORIZON_MS }),
            ),
          }),
          { maxLength: 60 },
        ),
        fc.boolean(),
        (gaps, repeats, storeBetween) => {
          let at = T0 + MIN;
          const unique: Delivery[] = gaps.map((gap, i) => {
            at += gap;
            return { event: usage(`e${i}`, at, 10_000 + 10 * (i % 5)), acceptedAtMs: at };
          });
          // Each repeat goes where its acceptance time falls among the unique deliveries.
          const withRepeats: (Delivery & { repeatOf: number | null })[] = unique.map((d) => ({
            ...d,
            repeatOf: null,
          }));
          for (const r of repeats) {
            const of = r.of % unique.length;
            const acceptedAtMs = unique[of]!.acceptedAtMs + r.afterMs;
            let pos = withRepeats.findIndex((d) => d.acceptedAtMs > acceptedAtMs);
            if (pos < 0) pos = withRepeats.length;
            withRepeats.splice(pos, 0, { event: unique[of]!.event, acceptedAtMs, repeatOf: of });
          }
          const plain = run(richMember(), unique);
          let s = richMember();
          const entries: LedgerEntry[] = [];
          withRepeats.forEach((d, i) => {
            if (storeBetween && i % 37 === 0) s = decodeState(encodeState(s));
            const r = apply(s, d.event, ctxAt(d.acceptedAtMs, cfg), d.acceptedAtMs);
            s = r.state;
            if (d.repeatOf === null) {
              expect(r.outcome.status).toBe("applied");
              entries.push(...r.entries);
              return;
            }
            // A repeat is never applied: a duplicate while its first copy is inside the horizon.
            const first = unique[d.repeatOf]!;
            const clock = Math.max(
              d.acceptedAtMs,
              ...withRepeats.slice(0, i).map((x) => x.acceptedAtMs),
            );
            if (first.event.eventAtMs >= clock - HORIZON_MS)
              expect(r.outcome.status).toBe("duplicate");
            else expect(r.outcome).toMatchObject({ refusal: { reason: "too_old" } });
          });
          expect(entries).toEqual(plain.entries);
          expect(encodeState(s)).toBe(encodeState(plain.state));
        },
      ),
      { numRuns: 150 },
    );
  });
});
