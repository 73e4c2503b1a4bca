// Lazy time: everything that happens because time passed (resets and refreshes, the fall-back to the
// free tier after a cancel, expiries once the allowed lateness is over), run in time order.

import { earliestBoundaryMs, firstBoundaryIndexAfter, nextBoundary, periodMs } from "./calendar.ts";
import { assert, assertMicros } from "./errors.ts";
import { MAX_ADVANCE_STEPS } from "./limits.ts";
import { type Found, NO_NOTIFICATIONS, nextLeadAt, TimeTeller } from "./notifications.ts";
import {
  copyState,
  type EngineContext,
  ledgerBalanceMicros,
  ledgerEntry,
  makeTierGrant,
  tierById,
} from "./state.ts";
import type { Grant, LedgerEntry, MemberState, Notification } from "./types.ts";

type Step =
  | { kind: "refresh"; atMs: number; grant: Grant }
  | { kind: "fallback"; atMs: number }
  | { kind: "expire"; atMs: number; grant: Grant };

/** Order of steps due at the same instant: refreshes, then the fall-back, then expiries. */
const REFRESH = 0;
const FALLBACK = 1;
const EXPIRE = 2;

/** The earliest step due at or before `untilMs` (expiries are due lateness after expiresAt). */
function earliestStep(state: MemberState, untilMs: number, latenessMs: number): Step | null {
  // Runs on every apply: scan without allocating until the winner is known.
  let bestAt = Number.POSITIVE_INFINITY;
  let bestKind = -1;
  let bestGrant: Grant | null = null;
  for (const g of state.grants) {
    if (g.recurrence !== null) {
      const at = nextBoundary(g.recurrence);
      if (at < bestAt || (at === bestAt && REFRESH < bestKind)) {
        bestAt = at;
        bestKind = REFRESH;
        bestGrant = g;
      }
    }
    if (g.expiresAtMs !== null) {
      const at = g.expiresAtMs + latenessMs;
      if (at < bestAt) {
        bestAt = at;
        bestKind = EXPIRE;
        bestGrant = g;
      }
    }
  }
  const cancelAt = state.tier.cancelAtMs;
  if (cancelAt !== null && (cancelAt < bestAt || (cancelAt === bestAt && bestKind === EXPIRE))) {
    bestAt = cancelAt;
    bestKind = FALLBACK;
  }
  if (bestAt > untilMs) return null;
  if (bestKind === FALLBACK) return { kind: "fallback", atMs: bestAt };
  assert(bestGrant !== null, "a grant step has its grant");
  return bestKind === REFRESH
    ? { kind: "refresh", atMs: bestAt, grant: bestGrant }
    : { kind: "expire", atMs: bestAt, grant: bestGrant };
}

/** Whether a time-driven step is due at or before `untilMs` (apply then copies grants and tier). */
export function stepDue(state: MemberState, untilMs: number, latenessMs: number): boolean {
  // The same answer as earliestStep(...) !== null, without the calendar in the common case.
  const cancelAt = state.tier.cancelAtMs;
  if (cancelAt !== null && cancelAt <= untilMs) return true;
  for (const g of state.grants) {
    if (g.expiresAtMs !== null && g.expiresAtMs + latenessMs <= untilMs) return true;
    const rec = g.recurrence;
    if (rec !== null && earliestBoundaryMs(rec) <= untilMs && nextBoundary(rec) <= untilMs) {
      return true;
    }
  }
  return false;
}

/**
 * When the state next needs time to pass (the sweeper's deadline): the next step, or the next lead
 * time before a bonus expires (so an idle member is told); null if nothing is scheduled.
 */
export function nextDeadlineMs(
  state: MemberState,
  ctx: Pick<EngineContext, "config">,
): number | null {
  const step = earliestStep(state, Number.MAX_SAFE_INTEGER, ctx.config.plans.allowedLatenessMs);
  const lead = nextLeadAt(state, state.clockMs, Number.MAX_SAFE_INTEGER, ctx.config.bonusLeadTimes);
  if (lead !== null && (step === null || lead < step.atMs)) return lead;
  return step === null ? null : step.atMs;
}

/** Appends entries with running balances; the one place time-driven entries are made. */
class EntryWriter {
  balanceMicros: number;
  readonly entries: LedgerEntry[];
  readonly state: MemberState;
  readonly processedAtMs: number;

  constructor(state: MemberState, entries: LedgerEntry[], processedAtMs: number) {
    this.state = state;
    this.entries = entries;
    this.processedAtMs = processedAtMs;
    this.balanceMicros = ledgerBalanceMicros(state);
  }

  push(entry: Omit<LedgerEntry, "userId" | "balanceAfterMicros" | "processedAtMs">): void {
    this.add(
      entry.id,
      entry.kind,
      entry.grantId,
      entry.cls,
      entry.amountMicros,
      entry.detailMicros,
      entry.feature,
      entry.taskId,
      entry.eventAtMs,
    );
  }

  /** The same as push, field by field (no intermediate object). */
  add(
    id: string,
    kind: LedgerEntry["kind"],
    grantId: string | null,
    cls: LedgerEntry["cls"],
    amountMicros: number,
    detailMicros: number,
    feature: LedgerEntry["feature"],
    taskId: string | null,
    eventAtMs: number,
  ): void {
    assert(
      Number.isSafeInteger(amountMicros) && !Object.is(amountMicros, -0),
      "amount is an integer",
    );
    this.balanceMicros += amountMicros;
    assertMicros(this.balanceMicros, "balance after");
    this.entries.push(
      ledgerEntry(
        id,
        kind,
        this.state.userId,
        grantId,
        cls,
        amountMicros,
        this.balanceMicros,
        detailMicros,
        feature,
        taskId,
        eventAtMs,
        this.processedAtMs,
      ),
    );
  }
}

export { EntryWriter };

/** Repays carried overdraft from a refreshed grant; returns what was repaid. */
function repayDebt(state: MemberState, grant: Grant): number {
  const repaid = Math.min(state.debtMicros, grant.remainingMicros);
  state.debtMicros -= repaid;
  grant.remainingMicros -= repaid;
  return repaid;
}

function refresh(
  state: MemberState,
  grant: Grant,
  atMs: number,
  untilMs: number,
  w: EntryWriter,
  ctx: EngineContext,
): void {
  const rec = grant.recurrence;
  assert(rec !== null, "a refreshed grant recurs");
  const before = grant.remainingMicros;
  const beforeAmount = grant.amountMicros;
  let tierChanged = false;
  if (grant.id === state.tier.grantId && state.tier.pendingTierId !== null) {
    // A downgrade takes effect at the next refresh.
    state.tier.tierId = state.tier.pendingTierId;
    state.tier.pendingTierId = null;
    grant.amountMicros = tierById(ctx.config, state.tier.tierId).monthlyAllowanceMicros;
    tierChanged = true;
  }
  grant.remainingMicros = grant.amountMicros;
  const repaid = state.debtMicros > 0 ? repayDebt(state, grant) : 0;
  rec.nextIndex += 1;
  if (
    before !== grant.remainingMicros ||
    repaid > 0 ||
    tierChanged ||
    beforeAmount !== grant.amountMicros
  ) {
    // Balance change: the refill (amount - before); repaid debt moves from debt to the grant.
    w.push({
      id: `${state.userId}:reset:${grant.id}:${atMs}`,
      kind: "reset",
      grantId: grant.id,
      cls: grant.cls,
      amountMicros: grant.amountMicros - before,
      detailMicros: before,
      feature: null,
      taskId: null,
      eventAtMs: atMs,
    });
  } else if (rec.period !== "1mo") {
    // Nothing changes on the following refreshes either until something happens: skip them at once.
    // (Only steps of other grants can fall in between, and they do not touch this one.) The last
    // boundary before the expiry still runs, so the recurrence ends at the same instant as when
    // swept boundary by boundary: what is told in between sees it running (its next refresh).
    let skipTo = firstBoundaryIndexAfter(rec.period, rec.anchorMs, untilMs);
    if (grant.expiresAtMs !== null) {
      const last = Math.ceil((grant.expiresAtMs - rec.anchorMs) / periodMs(rec.period)) - 1;
      skipTo = Math.min(skipTo, last);
    }
    rec.nextIndex = Math.max(rec.nextIndex, skipTo);
  }
  if (grant.expiresAtMs !== null && nextBoundary(rec) >= grant.expiresAtMs) grant.recurrence = null;
}

function fallBackToFree(
  state: MemberState,
  atMs: number,
  w: EntryWriter,
  ctx: EngineContext,
): void {
  const free = tierById(ctx.config, ctx.config.plans.freeTierId);
  const grant = makeTierGrant(free, state.tier.anchorMs, atMs, free.monthlyAllowanceMicros);
  state.grants.push(grant);
  state.tier = {
    tierId: free.id,
    billing: "free",
    anchorMs: state.tier.anchorMs,
    grantId: grant.id,
    pendingTierId: null,
    cancelAtMs: null,
  };
  repayDebt(state, grant);
  w.push({
    id: `${state.userId}:grant:${grant.id}:${atMs}`,
    kind: "grant",
    grantId: grant.id,
    cls: grant.cls,
    amountMicros: grant.amountMicros,
    detailMicros: 0,
    feature: null,
    taskId: null,
    eventAtMs: atMs,
  });
}

function forfeit(state: MemberState, grant: Grant, w: EntryWriter): void {
  const index = state.grants.indexOf(grant);
  assert(index >= 0, "an expiring grant is held");
  state.grants.splice(index, 1);
  if (grant.remainingMicros > 0) {
    w.push({
      id: `${state.userId}:expire:${grant.id}:${grant.expiresAtMs}`,
      kind: "expire",
      grantId: grant.id,
      cls: grant.cls,
      amountMicros: -grant.remainingMicros,
      detailMicros: 0,
      feature: null,
      taskId: null,
      eventAtMs: grant.expiresAtMs ?? 0,
    });
  }
}

/**
 * Runs every step due up to `nowMs` on `state` in place, appending entries, and tells what they
 * changed with the lead times the clock passes (notifications.ts), in time order: returns
 * `found` with the notifications added. Time never goes back: an earlier `nowMs` does nothing.
 */
export function advanceInPlace(
  state: MemberState,
  nowMs: number,
  entries: LedgerEntry[],
  ctx: EngineContext,
  found: Found,
): Found {
  const lateness = ctx.config.plans.allowedLatenessMs;
  const processedAtMs = Math.max(ctx.nowMs, nowMs);
  let w: EntryWriter | null = null;
  let teller: TimeTeller | null = null;
  // Each lead time after the clock is passed once, after the steps at its instant.
  let leadsAfterMs = state.clockMs;
  for (let steps = 0; ; steps++) {
    assert(steps < MAX_ADVANCE_STEPS, "advance ends within MAX_ADVANCE_STEPS");
    const step = earliestStep(state, nowMs, lateness);
    const leadAtMs = nextLeadAt(state, leadsAfterMs, nowMs, ctx.config.bonusLeadTimes);
    if (leadAtMs !== null && (step === null || leadAtMs < step.atMs)) {
      teller ??= new TimeTeller(state, ctx.config, processedAtMs);
      teller.leadTimeAt(leadAtMs);
      leadsAfterMs = leadAtMs;
      continue;
    }
    teller?.beforeStepAt(step === null ? null : step.atMs);
    if (step === null) break;
    w ??= new EntryWriter(state, entries, processedAtMs);
    teller ??= new TimeTeller(state, ctx.config, processedAtMs);
    const made = entries.length;
    if (step.kind === "refresh") refresh(state, step.grant, step.atMs, nowMs, w, ctx);
    else if (step.kind === "fallback") fallBackToFree(state, step.atMs, w, ctx);
    else forfeit(state, step.grant, w);
    const grant = step.kind === "fallback" ? tierGrantOf(state) : step.grant;
    teller.stepped(step.kind, step.atMs, grant, entries.length > made);
    // A lead time before this step is passed: a refill now does not tell about it afterwards.
    if (step.atMs - 1 > leadsAfterMs) leadsAfterMs = step.atMs - 1;
  }
  if (nowMs > state.clockMs) state.clockMs = nowMs;
  if (teller === null) return found;
  const told = teller.finish();
  if (told === null) return found;
  if (found === null) return told;
  for (const n of told) found.push(n);
  return found;
}

function tierGrantOf(state: MemberState): Grant {
  const grant = state.grants.find((g) => g.id === state.tier.grantId);
  assert(grant !== undefined, "the tier grant is held");
  return grant;
}

function nextDeadlineUnder(state: MemberState, nowMs: number, ctx: EngineContext): boolean {
  const d = nextDeadlineMs(state, ctx);
  return d !== null && d <= nowMs;
}

/**
 * Pure form for the sweeper: the state advanced to `nowMs`, the entries that produced and the
 * notifications (a lead time tells without an entry: the state is then worth writing too).
 */
export function advanceTo(
  state: MemberState,
  ctx: EngineContext,
): { state: MemberState; entries: LedgerEntry[]; notifications: readonly Notification[] } {
  if (!nextDeadlineUnder(state, ctx.nowMs, ctx)) {
    if (ctx.nowMs <= state.clockMs) return { state, entries: [], notifications: NO_NOTIFICATIONS };
    const moved = copyState(state);
    moved.clockMs = ctx.nowMs;
    return { state: moved, entries: [], notifications: NO_NOTIFICATIONS };
  }
  const next = copyState(state);
  const entries: LedgerEntry[] = [];
  const found = advanceInPlace(next, ctx.nowMs, entries, ctx, null);
  return { state: next, entries, notifications: found ?? NO_NOTIFICATIONS };
}
