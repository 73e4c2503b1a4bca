// Goal: the Redis form of a member's state round-trips exactly, is versioned, rejects corrupt
// values with EngineError(state_invalid), and stays small with many grants.

import { describe, expect, it } from "vitest";
import { apply } from "./apply.ts";
import { decodeState, encodeState, STATE_CODEC_VERSION } from "./codec.ts";
import { EngineError } from "./errors.ts";
import { bonus, C, command, DAY, HOUR, T0, usage } from "./fixtures.ts";
import { ctxAt, newMember, withoutMemory } from "./harness.ts";
import type { EngineInput, MemberState } from "./types.ts";

function run(s: MemberState, inputs: EngineInput[], nowMs: number): MemberState {
  for (const input of inputs) s = apply(s, input, ctxAt(nowMs)).state;
  return s;
}

/** A member with `grants` grants in all and a full memory of recent ids. */
function memberWithGrants(grants: number): MemberState {
  let s = newMember();
  for (let i = 1; i < grants; i++)
    s = apply(s, bonus(`promo-2026-${i}`, T0, 5 * C, T0 + (10 + i) * DAY), ctxAt(T0)).state;
  for (let i = 0; i < 64; i++) {
    s = apply(
      s,
      usage(`evt-${i}`, T0 + HOUR + i, 10_000, { taskId: `task-${i % 12}` }),
      ctxAt(T0 + HOUR + i),
    ).state;
  }
  return s;
}

describe("state codec", () => {
  it("round-trips exactly: every field, carried debt, pending tier, windows, refusals, tasks", () => {
    const S = T0 + DAY;
    let s = run(
      newMember(),
      [bonus("b1", T0, 5 * C, T0 + 3 * DAY, { recurrence: "5h" }), usage("e1", T0 + HOUR, 300 * C)],
      T0 + HOUR,
    );
    s = run(
      s,
      [
        command("subscription_start", "sub", S, { tierId: "pro", billing: "annual" }),
        command("subscription_change", "down", S, { tierId: "plus" }),
        command("migrate_legacy", "mig", S, { unusedUses: { ppt: 3 } }),
        command("revoke_grant", "nope", S, { grantId: "missing" }),
      ],
      S,
    );
    const text = encodeState(s);
    expect(decodeState(text)).toEqual(s);
    expect(encodeState(decodeState(text))).toBe(text);
    expect(text.startsWith(`[${STATE_CODEC_VERSION},`)).toBe(true);
  });

  it("rejects another version and corrupt values with state_invalid", () => {
    const text = encodeState(newMember());
    expect(() => decodeState(text.replace(/^\[\d+,/, `[${STATE_CODEC_VERSION + 1},`))).toThrow(
      EngineError,
    );
    expect(() => decodeState("{")).toThrow(/not JSON/);
    expect(() => decodeState('[1,"u1",0]')).toThrow(/tier is not an array/);
    try {
      decodeState("[1]");
    } catch (e) {
      expect((e as EngineError).code).toBe("state_invalid");
    }
  });

  it("stays small: sizes for 1, 5 and 50 grants with a full id memory", () => {
    const sizes = [1, 5, 50].map((n) => encodeState(memberWithGrants(n)).length);
    // Printed by the bench too; the bounds catch a regression of the compact form.
    expect(sizes[0]).toBeLessThan(4_000);
    expect(sizes[2]! - sizes[0]!).toBeLessThan(49 * 80);
  });
});

/**
 * Written by the version 3 and version 2 encoders for OLD_INPUTS (a recurring bonus, then usage
 * past the whole balance), before the state kept the sides last told.
 */
const V3_TEXT =
  '[3,"Cu1goprtl9mDEfreeAgo37GBMAAggn8kHAggn8kHC6IStier:1768003200000gww3-Fgo37Ggww3-FCgo37GCxJCb1g0lxJgo37Gg0lxJggqsuPAgo37GCBGCt1AAggn8kHAAACACb1D0QRhRkYaghHACe1FdCj4fIhyAABjGDb1g0lxJgww3-Fgo37GCDgwBh0lxJADt1AhCTtier:1768003200000hww3-FAuKAAg8wzcA"]';
const V2_TEXT =
  '[2,"Cu1goprtl9mDEfreeAgo37GBMAAggn8kHAggn8kHC6IStier:1768003200000gww3-Fgo37Ggww3-FCgo37GCxJCb1g0lxJgo37Gg0lxJggqsuPAgo37GCBGCt1AAggn8kHCACb1D0QRhRkYaACe1FdCj4fIhyABjGDb1g0lxJgww3-Fgo37GCDgwBh0lxJADt1AhCTtier:1768003200000hww3-FAuKAAg8wzcA"]';

function oldInputsState(): MemberState {
  const granted = run(
    newMember(),
    [bonus("b1", T0, 5 * C, T0 + 3 * DAY, { recurrence: "5h" })],
    T0,
  );
  return run(granted, [usage("e1", T0 + HOUR, 120 * C, { taskId: "t1" })], T0 + HOUR);
}

describe("states stored by older versions", () => {
  it("version 3 decodes to the same state with no side told; its next moment tells where it stands", () => {
    const now = oldInputsState();
    expect([now.lowCreditNotified, now.exhaustedNotified]).toEqual([true, true]);
    const old = decodeState(V3_TEXT);
    expect(old).toEqual({ ...now, lowCreditNotified: false, exhaustedNotified: false });
    const text = encodeState(old);
    expect(text.startsWith(`[${STATE_CODEC_VERSION},`)).toBe(true);
    expect(decodeState(text)).toEqual(old);
    const next = apply(old, usage("e2", T0 + 2 * HOUR, 10_000), ctxAt(T0 + 2 * HOUR));
    expect(next.notifications.map((n) => n.kind)).toEqual(["low_credit", "credits_exhausted"]);
    expect(encodeState(next.state)).not.toBe(encodeState(old));
  });

  it("version 2 decodes too: its records at the state's clock, no side told", () => {
    const now = oldInputsState();
    const old = decodeState(V2_TEXT);
    expect(withoutMemory(old)).toEqual({
      ...withoutMemory(now),
      lowCreditNotified: false,
      exhaustedNotified: false,
    });
    expect(old.applied.toArray().map((r) => [r.id, r.entries, r.atSec])).toEqual(
      now.applied.toArray().map((r) => [r.id, r.entries, Math.ceil(now.clockMs / 1000)]),
    );
    expect(decodeState(encodeState(old))).toEqual(old);
  });
});
