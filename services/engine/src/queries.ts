// Read-only answers on a member's state at a given time: the balance view, the usage history by
// task, and admission of a new task. Each query first lets time pass (without keeping the result).

import { advanceTo, nextDeadlineMs } from "./advance.ts";
import { WINDOW_5H_MS, WINDOW_7D_MS } from "./limits.ts";
import {
  nextRefreshAtMs,
  outOfCreditsPause,
  spendableMicros,
  upgradeTo,
  windowCapPause,
} from "./pause.ts";
import {
  capacityOfGrant,
  type EngineContext,
  isEligibleAt,
  isLowCredit,
  tierById,
} from "./state.ts";
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

/** floor(a * scale / b) without leaving safe integers. */
function ratio(a: number, b: number, scale: number): number {
  if (b <= 0) return 0;
  return Number((BigInt(Math.max(0, a)) * BigInt(scale)) / BigInt(b));
}

/** The balance a member sees (docs/product-rules.md, "What a member sees"). */
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
    capacity += capacityOfGrant(s, tier, g);
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
    nextRefreshAtMs: nextRefreshAtMs(s, nowMs),
    lowCredit: isLowCredit(remaining, capacity, threshold),
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
  const capability = capabilityOf(task.feature, task.taskKind);
  if (!tier.capabilities.includes(capability)) {
    return {
      allowed: false,
      reason: "feature_not_in_tier",
      retryAtMs: null,
      nextRefreshAtMs: nextRefreshAtMs(s, nowMs),
      windowResetAtMs: null,
      upgradeTierId: upgradeTo(ctx.config, tier, (t) => t.capabilities.includes(capability)),
    };
  }
  const capped = windowCapPause(s, tier, nowMs, ctx.config);
  if (capped !== null) return capped;
  if (spendableMicros(s, nowMs) <= 0) return outOfCreditsPause(s, tier, nowMs, ctx.config);
  return { allowed: true };
}

export { nextDeadlineMs };
