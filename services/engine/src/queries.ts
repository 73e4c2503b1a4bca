// Read-only answers on a member's state at a given time: the balance view, the usage history by
// task, and admission of a new task. Each query first lets time pass (without keeping the result).

import { advanceTo, nextDeadlineMs } from "./advance.ts";
import { nextBoundary } from "./calendar.ts";
import type { EngineConfig, Tier } from "./config.ts";
import { WINDOW_5H_MS, WINDOW_7D_MS } from "./limits.ts";
import { type EngineContext, isEligibleAt, tierById } from "./state.ts";
import type {
  Admission,
  AgentTaskKind,
  Billing,
  Capability,
  Feature,
  GrantSource,
  MemberState,
  UsageWindow,
} from "./types.ts";

export interface WindowView {
  capMicros: number;
  /** Usage inside the running window (0 when none is running). */
  usedMicros: number;
  /** When the running window ends; null when none is running (the next usage starts one). */
  resetAtMs: number | null;
}

export interface BalanceView {
  asOfMs: number;
  tierId: string;
  billing: Billing;
  pendingTierId: string | null;
  cancelAtMs: number | null;
  /** Credits usable now: active grants minus carried overdraft, never below 0. */
  remainingMicros: number;
  /** Tier allowance plus the amount of every other active grant (bonus, migration). */
  capacityMicros: number;
  /** remaining / capacity in whole percent, rounded down, 0..100. */
  percent: number;
  /** The same in basis points (0..10000), for a finer bar. */
  basisPoints: number;
  remainingByClass: { bonusMicros: number; subscriptionMicros: number };
  debtMicros: number;
  bonusGrants: {
    grantId: string;
    source: GrantSource;
    amountMicros: number;
    remainingMicros: number;
    expiresAtMs: number | null;
  }[];
  /** Earliest upcoming reset or refresh of any grant (or the fall-back to free after a cancel). */
  nextRefreshAtMs: number | null;
  lowCredit: boolean;
  lowCreditThresholdPercent: number;
  window5h: WindowView | null;
  window7d: WindowView | null;
}

function windowView(
  w: UsageWindow | null,
  capMicros: number | null,
  lengthMs: number,
  nowMs: number,
): WindowView | null {
  if (capMicros === null) return null;
  const running = w !== null && nowMs < w.startMs + lengthMs;
  return {
    capMicros,
    usedMicros: running ? w.usedMicros : 0,
    resetAtMs: running ? w.startMs + lengthMs : null,
  };
}

function nextRefreshAtMs(state: MemberState): number | null {
  let best: number | null = state.tier.cancelAtMs;
  for (const g of state.grants) {
    if (g.recurrence === null) continue;
    const at = nextBoundary(g.recurrence);
    if (best === null || at < best) best = at;
  }
  return best;
}

/** floor(a * scale / b) without leaving safe integers. */
function ratio(a: number, b: number, scale: number): number {
  if (b <= 0) return 0;
  return Number((BigInt(Math.max(0, a)) * BigInt(scale)) / BigInt(b));
}

/** The balance a member sees (DESIGN.md, "What a member sees"). */
export function balanceView(state: MemberState, ctx: EngineContext): BalanceView {
  const s = advanceTo(state, ctx).state;
  const nowMs = Math.max(ctx.nowMs, s.clockMs);
  const tier = tierById(ctx.config, s.tier.tierId);
  let bonus = 0;
  let subscription = 0;
  let capacity = 0;
  const bonusGrants: BalanceView["bonusGrants"] = [];
  for (const g of s.grants) {
    if (!isEligibleAt(g, nowMs)) continue;
    if (g.cls === "bonus") bonus += g.remainingMicros;
    else subscription += g.remainingMicros;
    capacity += g.id === s.tier.grantId ? tier.monthlyAllowanceMicros : g.amountMicros;
    if (g.cls === "bonus") {
      bonusGrants.push({
        grantId: g.id,
        source: g.source,
        amountMicros: g.amountMicros,
        remainingMicros: g.remainingMicros,
        expiresAtMs: g.expiresAtMs,
      });
    }
  }
  bonusGrants.sort(
    (a, b) =>
      (a.expiresAtMs ?? Number.MAX_SAFE_INTEGER) - (b.expiresAtMs ?? Number.MAX_SAFE_INTEGER),
  );
  const remaining = Math.max(0, bonus + subscription - s.debtMicros);
  const basisPoints = Math.min(10_000, ratio(remaining, capacity, 10_000));
  const threshold = tier.lowCreditThresholdPercent;
  return {
    asOfMs: nowMs,
    tierId: s.tier.tierId,
    billing: s.tier.billing,
    pendingTierId: s.tier.pendingTierId,
    cancelAtMs: s.tier.cancelAtMs,
    remainingMicros: remaining,
    capacityMicros: capacity,
    percent: Math.floor(basisPoints / 100),
    basisPoints,
    remainingByClass: { bonusMicros: bonus, subscriptionMicros: subscription },
    debtMicros: s.debtMicros,
    bonusGrants,
    nextRefreshAtMs: nextRefreshAtMs(s),
    // remaining / capacity < threshold%, in integers.
    lowCredit: BigInt(remaining) * 100n < BigInt(threshold) * BigInt(capacity),
    lowCreditThresholdPercent: threshold,
    window5h: windowView(s.window5h, tier.window5hCapMicros, WINDOW_5H_MS, nowMs),
    window7d: windowView(s.window7d, tier.window7dCapMicros, WINDOW_7D_MS, nowMs),
  };
}

export interface Transaction {
  taskId: string;
  feature: Feature;
  taskKind: AgentTaskKind | null;
  /** Time of the task's latest usage. */
  atMs: number;
  creditsMicros: number;
}

/** The last 10 transactions (one per task, the sum of its usage events), newest first. */
export function recentTransactions(state: MemberState, limit = 10): Transaction[] {
  return state.recentTasks.slice(0, limit).map((t) => ({
    taskId: t.taskId,
    feature: t.feature,
    taskKind: t.taskKind,
    atMs: t.lastAtMs,
    creditsMicros: t.costMicros,
  }));
}

export function capabilityOf(feature: Feature, taskKind: AgentTaskKind | null): Capability {
  return feature === "agent" && taskKind === "swarm" ? "agent.swarm" : feature;
}

/** The lowest tier above `current` that satisfies `fits`, or null. */
function upgradeTo(config: EngineConfig, current: Tier, fits: (t: Tier) => boolean): string | null {
  for (const t of config.tiersByRank) if (t.rank > current.rank && fits(t)) return t.id;
  return null;
}

/**
 * May the member start a new task now? Refusal order: feature not in tier, window cap, out of
 * credits. Tasks already running are not asked: their usage is always debited.
 */
export function admitTask(
  state: MemberState,
  task: { feature: Feature; taskKind: AgentTaskKind | null },
  ctx: EngineContext,
): Admission {
  const s = advanceTo(state, ctx).state;
  const nowMs = Math.max(ctx.nowMs, s.clockMs);
  const tier = tierById(ctx.config, s.tier.tierId);
  const refresh = nextRefreshAtMs(s);
  const capability = capabilityOf(task.feature, task.taskKind);
  if (!tier.capabilities.includes(capability)) {
    return {
      allowed: false,
      reason: "feature_not_in_tier",
      retryAtMs: null,
      nextRefreshAtMs: refresh,
      windowResetAtMs: null,
      upgradeTierId: upgradeTo(ctx.config, tier, (t) => t.capabilities.includes(capability)),
    };
  }
  const capped: { resetAtMs: number; usedMicros: number; which: "5h" | "7d" }[] = [];
  for (const [which, w, cap, len] of [
    ["5h", s.window5h, tier.window5hCapMicros, WINDOW_5H_MS],
    ["7d", s.window7d, tier.window7dCapMicros, WINDOW_7D_MS],
  ] as const) {
    if (cap !== null && w !== null && nowMs < w.startMs + len && w.usedMicros >= cap) {
      capped.push({ resetAtMs: w.startMs + len, usedMicros: w.usedMicros, which });
    }
  }
  if (capped.length > 0) {
    const resetAtMs = Math.max(...capped.map((c) => c.resetAtMs));
    return {
      allowed: false,
      reason: "window_cap",
      retryAtMs: resetAtMs,
      nextRefreshAtMs: refresh,
      windowResetAtMs: resetAtMs,
      upgradeTierId: upgradeTo(ctx.config, tier, (t) =>
        capped.every((c) => {
          const cap = c.which === "5h" ? t.window5hCapMicros : t.window7dCapMicros;
          return cap === null || cap > c.usedMicros;
        }),
      ),
    };
  }
  let spendable = -s.debtMicros;
  for (const g of s.grants) if (isEligibleAt(g, nowMs)) spendable += g.remainingMicros;
  if (spendable <= 0) {
    return {
      allowed: false,
      reason: "out_of_credits",
      retryAtMs: refresh,
      nextRefreshAtMs: refresh,
      windowResetAtMs: null,
      upgradeTierId: upgradeTo(
        ctx.config,
        tier,
        (t) => t.monthlyAllowanceMicros > tier.monthlyAllowanceMicros,
      ),
    };
  }
  return { allowed: true };
}

export { nextDeadlineMs };
