// Test harness only (imported by *.test.ts, never by index.ts): runs the engine on a member the way
// the tests need it, at a time they choose, and checks the outcome: applyOk for an input that must
// apply, refusedReason for one that must be refused without effect. The inputs and the
// configuration come from fixtures.ts.

import { expect } from "vitest";
import { apply } from "./apply.ts";
import type { EngineConfig } from "./config.ts";
import { config, HOUR, T0, USER } from "./fixtures.ts";
import { type EngineContext, openMember } from "./state.ts";
import type { EngineInput, MemberState } from "./types.ts";

export function ctxAt(nowMs: number, cfg: EngineConfig = config): EngineContext {
  return { config: cfg, nowMs };
}

export function newMember(atMs = T0, cfg: EngineConfig = config): MemberState {
  return openMember(USER, atMs, ctxAt(atMs, cfg)).state;
}

/** Applies `input` at `nowMs` and checks it was applied. */
export function applyOk(state: MemberState, input: EngineInput, nowMs: number, cfg = config) {
  const r = apply(state, input, ctxAt(nowMs, cfg));
  expect(r.outcome).toEqual({ status: "applied" });
  return r;
}

/** A new member after `inputs`, each applied (and checked applied) at its own time. */
export function memberAfter(...inputs: EngineInput[]): MemberState {
  let s = newMember();
  for (const input of inputs) {
    s = applyOk(s, input, input.type === "usage" ? input.eventAtMs : input.atMs).state;
  }
  return s;
}

/** The state without its memory of applied ids: what a refusal must leave unchanged. */
export function withoutMemory(state: MemberState): Omit<MemberState, "applied"> {
  const { applied: _applied, ...rest } = state;
  return rest;
}

/**
 * The refusal's reason, after checking it changed nothing but the memory of the id (the status
 * when the input was not refused).
 */
export function refusedReason(state: MemberState, input: EngineInput, nowMs: number) {
  const r = apply(state, input, ctxAt(nowMs));
  expect(withoutMemory(r.state)).toEqual(withoutMemory(state));
  if (r.outcome.status !== "refused") return r.outcome.status;
  expect(r.state.applied.at(-1)).toEqual({
    id: input.id,
    fingerprint: expect.any(Number),
    entries: null,
    refusal: r.outcome.refusal,
    atSec: expect.any(Number),
  });
  // A repeat answers the same refusal.
  // Within the duplicate horizon (a repeat older than it is refused too_old, horizon.test.ts).
  expect(apply(r.state, input, ctxAt(nowMs + HOUR)).outcome).toEqual(r.outcome);
  return r.outcome.refusal.reason;
}
