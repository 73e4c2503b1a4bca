// Why new tasks are paused: admission's answers for a full usage window and for credits run out,
// shared by admitTask and the notifications that announce a pause (the same data in both).

import { boundaryAt, firstBoundaryIndexAfter, nextBoundary } from "./calendar.ts";
import type { EngineConfig, Tier } from "./config.ts";
import { WINDOW_5H_MS, WINDOW_7D_MS } from "./limits.ts";
import { isEligibleAt } from "./state.ts";
import type { MemberState, Pause } from "./types.ts";

/**
 * The earliest reset or refresh of any grant after `afterMs`, or the fall-back to free after a
 * cancel, once the state has run its steps up to `afterMs`. A 5-hour or 7-day refresh that changed
 * nothing moves its recurrence past the boundaries up to the end of its advance (advance.ts):
 * the first boundary after `afterMs` is its next refresh all the same.
 */
export function nextRefreshAtMs(state: MemberState, afterMs: number): number | null {
  let best: number | null = state.tier.cancelAtMs;
  for (const g of state.grants) {
    const rec = g.recurrence;
    if (rec === null) continue;
    let at = nextBoundary(rec);
    if (rec.period !== "1mo") {
      const first = boundaryAt(
        rec.period,
        rec.anchorMs,
        firstBoundaryIndexAfter(rec.period, rec.anchorMs, afterMs),
      );
      if (first < at) at = first;
    }
    if (best === null || at < best) best = at;
  }
  return best;
}

/** The lowest tier above `current` that satisfies `fits`, or null. */
export function upgradeTo(
  config: EngineConfig,
  current: Tier,
  fits: (t: Tier) => boolean,
): string | null {
  for (const t of config.tiersByRank) if (t.rank > current.rank && fits(t)) return t.id;
  return null;
}

/** What the member could spend at `atMs`: active grants minus carried overdraft (may be <= 0). */
export function spendableMicros(state: MemberState, atMs: number): number {
  let spendable = -state.debtMicros;
  for (const g of state.grants) if (isEligibleAt(g, atMs)) spendable += g.remainingMicros;
  return spendable;
}

/** The pause while a running window is full at `nowMs` (both windows: the later reset), or null. */
export function windowCapPause(
  state: MemberState,
  tier: Tier,
  nowMs: number,
  config: EngineConfig,
): Pause | null {
  const capped: { resetAtMs: number; usedMicros: number; which: "5h" | "7d" }[] = [];
  for (const [which, w, cap, len] of [
    ["5h", state.window5h, tier.window5hCapMicros, WINDOW_5H_MS],
    ["7d", state.window7d, tier.window7dCapMicros, WINDOW_7D_MS],
  ] as const) {
    if (cap !== null && w !== null && nowMs < w.startMs + len && w.usedMicros >= cap) {
      capped.push({ resetAtMs: w.startMs + len, usedMicros: w.usedMicros, which });
    }
  }
  if (capped.length === 0) return null;
  const resetAtMs = Math.max(...capped.map((c) => c.resetAtMs));
  return {
    allowed: false,
    reason: "window_cap",
    retryAtMs: resetAtMs,
    nextRefreshAtMs: nextRefreshAtMs(state, nowMs),
    windowResetAtMs: resetAtMs,
    upgradeTierId: upgradeTo(config, tier, (t) =>
      capped.every((c) => {
        const cap = c.which === "5h" ? t.window5hCapMicros : t.window7dCapMicros;
        return cap === null || cap > c.usedMicros;
      }),
    ),
  };
}

/** The pause when nothing is spendable: retry at the next refresh, or upgrade to a bigger tier. */
export function outOfCreditsPause(
  state: MemberState,
  tier: Tier,
  nowMs: number,
  config: EngineConfig,
): Pause {
  const refresh = nextRefreshAtMs(state, nowMs);
  return {
    allowed: false,
    reason: "out_of_credits",
    retryAtMs: refresh,
    nextRefreshAtMs: refresh,
    windowResetAtMs: null,
    upgradeTierId: upgradeTo(
      config,
      tier,
      (t) => t.monthlyAllowanceMicros > tier.monthlyAllowanceMicros,
    ),
  };
}
