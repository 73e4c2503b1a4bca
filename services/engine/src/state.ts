// A member's state: opening one, copying it for a pure apply, its balance, and the debit order.

import { boundaryAt, firstBoundaryIndexAfter } from "./calendar.ts";
import type { EngineConfig, Tier } from "./config.ts";
import { assert, assertMicros } from "./errors.ts";
import { IdMemory } from "./memory.ts";
import type { Grant, LedgerEntry, MemberState } from "./types.ts";

/** What every apply and query runs against: the configuration and the processing time. */
export interface EngineContext {
  config: EngineConfig;
  /** Processing time (the adapter's clock), epoch ms. */
  nowMs: number;
}

export function tierById(config: EngineConfig, tierId: string): Tier {
  const tier = config.tiersById.get(tierId);
  assert(tier !== undefined, `tier ${tierId} is in the plans`);
  return tier;
}

/** Balance as the ledger sees it: every grant held (active or not) minus carried overdraft. */
export function ledgerBalanceMicros(state: MemberState): number {
  let sum = -state.debtMicros;
  for (const g of state.grants) sum += g.remainingMicros;
  assertMicros(sum, "balance");
  return sum;
}

/**
 * A ledger entry, its fields given in the order LedgerEntry declares them. Entries made while
 * applying and entries read back from a stored state come from here, so all have one object shape
 * (their keys in one order) for the engine's hot paths.
 */
export function ledgerEntry(
  id: string,
  kind: LedgerEntry["kind"],
  userId: string,
  grantId: string | null,
  cls: LedgerEntry["cls"],
  amountMicros: number,
  balanceAfterMicros: number,
  detailMicros: number,
  feature: LedgerEntry["feature"],
  taskId: string | null,
  eventAtMs: number,
  processedAtMs: number,
): LedgerEntry {
  return {
    id,
    kind,
    grantId,
    cls,
    amountMicros,
    detailMicros,
    feature,
    taskId,
    eventAtMs,
    userId,
    balanceAfterMicros,
    processedAtMs,
  };
}

/** What a grant adds to the capacity: the tier's allowance for the tier grant, else its amount. */
export function capacityOfGrant(state: MemberState, tier: Tier, grant: Grant): number {
  return grant.id === state.tier.grantId ? tier.monthlyAllowanceMicros : grant.amountMicros;
}

/** The low-credit flag: remaining / capacity under the threshold percent, in integers. */
export function isLowCredit(
  remainingMicros: number,
  capacityMicros: number,
  thresholdPercent: number,
): boolean {
  const r = Math.max(0, remainingMicros);
  // Exact in doubles below 2^53; balances can reach MAX_GRANTS * MAX_GRANT_MICROS (BigInt then).
  if (r <= 9e13 && capacityMicros <= 9e13) return r * 100 < thresholdPercent * capacityMicros;
  return BigInt(r) * 100n < BigInt(thresholdPercent) * BigInt(capacityMicros);
}

export function isEligibleAt(grant: Grant, atMs: number): boolean {
  return grant.effectiveFromMs <= atMs && (grant.expiresAtMs === null || atMs < grant.expiresAtMs);
}

/**
 * Debit order (docs/product-rules.md): bonus before subscription; inside a class earliest expiry first (never
 * expiring last), then priority, then oldest, then grant id.
 */
export function debitOrder(a: Grant, b: Grant): number {
  if (a.cls !== b.cls) return a.cls === "bonus" ? -1 : 1;
  const ea = a.expiresAtMs ?? Number.POSITIVE_INFINITY;
  const eb = b.expiresAtMs ?? Number.POSITIVE_INFINITY;
  if (ea !== eb) return ea < eb ? -1 : 1;
  if (a.priority !== b.priority) return a.priority - b.priority;
  if (a.createdAtMs !== b.createdAtMs) return a.createdAtMs - b.createdAtMs;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Grants with credits usable for usage at `atMs`, in debit order. */
export function debitableGrants(state: MemberState, atMs: number): Grant[] {
  const out: Grant[] = [];
  for (const g of state.grants) if (g.remainingMicros > 0 && isEligibleAt(g, atMs)) out.push(g);
  if (out.length > 1) out.sort(debitOrder);
  return out;
}

/** A tier grant: the tier's monthly allowance, reset every month at the anchor. */
export function makeTierGrant(
  tier: Tier,
  anchorMs: number,
  fromMs: number,
  remainingMicros: number,
): Grant {
  return {
    id: `tier:${fromMs}`,
    cls: "subscription",
    source: "subscription",
    amountMicros: tier.monthlyAllowanceMicros,
    remainingMicros,
    effectiveFromMs: fromMs,
    expiresAtMs: null,
    priority: 0,
    createdAtMs: fromMs,
    recurrence: {
      period: "1mo",
      anchorMs,
      nextIndex: firstBoundaryIndexAfter("1mo", anchorMs, fromMs),
    },
  };
}

/**
 * A new member on the free tier, anchored at sign-up, with the entry granting the free allowance.
 * The consumer calls it when it has no state for a user.
 */
export function openMember(
  userId: string,
  signUpAtMs: number,
  ctx: EngineContext,
): { state: MemberState; entries: LedgerEntry[] } {
  assert(userId.length > 0, "userId is not empty");
  assert(Number.isSafeInteger(signUpAtMs) && signUpAtMs >= 0, "signUpAtMs is a time");
  const free = tierById(ctx.config, ctx.config.plans.freeTierId);
  const grant = makeTierGrant(free, signUpAtMs, signUpAtMs, free.monthlyAllowanceMicros);
  const state: MemberState = {
    userId,
    clockMs: signUpAtMs,
    tier: {
      tierId: free.id,
      billing: "free",
      anchorMs: signUpAtMs,
      grantId: grant.id,
      pendingTierId: null,
      cancelAtMs: null,
    },
    grants: [grant],
    debtMicros: 0,
    window5h: null,
    window7d: null,
    migrated: false,
    lowCreditNotified: false,
    exhaustedNotified: false,
    recentTasks: [],
    applied: IdMemory.EMPTY,
  };
  const entry: LedgerEntry = {
    id: `${userId}:grant:${grant.id}:${signUpAtMs}`,
    kind: "grant",
    userId,
    grantId: grant.id,
    cls: "subscription",
    amountMicros: grant.amountMicros,
    balanceAfterMicros: grant.amountMicros,
    detailMicros: 0,
    feature: null,
    taskId: null,
    eventAtMs: signUpAtMs,
    processedAtMs: Math.max(ctx.nowMs, signUpAtMs),
  };
  return { state, entries: [entry] };
}

function copyGrant(g: Grant): Grant {
  return {
    id: g.id,
    cls: g.cls,
    source: g.source,
    amountMicros: g.amountMicros,
    remainingMicros: g.remainingMicros,
    effectiveFromMs: g.effectiveFromMs,
    expiresAtMs: g.expiresAtMs,
    priority: g.priority,
    createdAtMs: g.createdAtMs,
    recurrence:
      g.recurrence === null
        ? null
        : {
            period: g.recurrence.period,
            anchorMs: g.recurrence.anchorMs,
            nextIndex: g.recurrence.nextIndex,
          },
  };
}

/** A copy deep enough that apply can change it without touching the caller's state. */
export function copyState(s: MemberState): MemberState {
  return {
    userId: s.userId,
    clockMs: s.clockMs,
    tier: { ...s.tier },
    grants: s.grants.map(copyGrant),
    debtMicros: s.debtMicros,
    window5h: s.window5h === null ? null : { ...s.window5h },
    window7d: s.window7d === null ? null : { ...s.window7d },
    migrated: s.migrated,
    lowCreditNotified: s.lowCreditNotified,
    exhaustedNotified: s.exhaustedNotified,
    // Task summaries are replaced, never changed in place; the id memory never changes.
    recentTasks: s.recentTasks.slice(),
    applied: s.applied,
  };
}

/**
 * A new state object sharing every part with `s`: the caller then replaces (never changes) what
 * it shares, or takes private copies first (ownGrantsAndTier).
 */
export function shallowCopy(s: MemberState): MemberState {
  return {
    userId: s.userId,
    clockMs: s.clockMs,
    tier: s.tier,
    grants: s.grants,
    debtMicros: s.debtMicros,
    window5h: s.window5h,
    window7d: s.window7d,
    migrated: s.migrated,
    lowCreditNotified: s.lowCreditNotified,
    exhaustedNotified: s.exhaustedNotified,
    recentTasks: s.recentTasks,
    applied: s.applied,
  };
}

/** Private copies of the grants (with their recurrences) and the tier, to change them in place. */
export function ownGrantsAndTier(s: MemberState): void {
  s.grants = s.grants.map(copyGrant);
  s.tier = { ...s.tier };
}

/** The end of the cycle after the current one (a migration grant lasts at least to it). */
export function endOfNextFullCycleMs(state: MemberState, atMs: number): number {
  const n = firstBoundaryIndexAfter("1mo", state.tier.anchorMs, atMs);
  return boundaryAt("1mo", state.tier.anchorMs, n + 1);
}
