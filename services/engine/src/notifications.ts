// Notification facts (docs/product-rules.md, "Notifications"): what the member and services are told, made by
// the same apply and advance that make the ledger entries, with ids derived from their cause, so
// each crossing is told once however its records are repeated, redelivered or split across runs.
//
// The moments at which the engine looks:
// - after an input is applied, at its processing time: the member's side of the low-credit
//   threshold and of "nothing spendable" (against the sides last told, kept in the state), and
//   for usage a window that became full;
// - in an advance, at each instant where a reset, refresh, fall-back or expiry changed credits:
//   `refreshed` and `bonus_expired` as they run, then the sides once for the instant;
// - at each lead time before a bonus expires that the member's clock passes: `bonus_expiring`.
// Nothing else is a moment: a sweep that only moves the clock looks at nothing, so the same inputs
// at the same processing times tell the same things whenever the sweeper runs.

import type { BonusLeadTime, EngineConfig, Tier } from "./config.ts";
import { WINDOW_5H_MS, WINDOW_7D_MS } from "./limits.ts";
import { nextRefreshAtMs, outOfCreditsPause, windowCapPause } from "./pause.ts";
import { capacityOfGrant, isEligibleAt, isLowCredit, tierById } from "./state.ts";
import type {
  Grant,
  MemberState,
  Notification,
  NotificationKind,
  Pause,
  UsageWindow,
} from "./types.ts";

/** The answer of an apply or advance that tells nothing (shared, frozen). */
export const NO_NOTIFICATIONS: readonly Notification[] = Object.freeze([]);

/** Notifications found so far: null until the first, so a quiet apply allocates nothing. */
export type Found = Notification[] | null;

function added(found: Found, n: Notification): Notification[] {
  if (found === null) return [n];
  found.push(n);
  return found;
}

/** What a member could spend at an instant and their capacity then (a reused scratch: no allocation). */
const sums = { spendableMicros: 0, capacityMicros: 0 };

function sumsAt(state: MemberState, tier: Tier, atMs: number): typeof sums {
  let spendable = -state.debtMicros;
  let capacity = 0;
  for (const g of state.grants) {
    if (!isEligibleAt(g, atMs)) continue;
    spendable += g.remainingMicros;
    capacity += capacityOfGrant(state, tier, g);
  }
  sums.spendableMicros = spendable;
  sums.capacityMicros = capacity;
  return sums;
}

/** The fields of one kind; the others are null. */
interface Details {
  pause?: Pause;
  window?: "5h" | "7d";
  windowResetAtMs?: number;
  grantId?: string;
  amountMicros?: number;
  expiresAtMs?: number;
  leadTime?: string;
}

/** The moment a notification belongs to: an input, or an instant of time and the grant stepped. */
interface Moment {
  inputId: string | null;
  grantId: string;
  atMs: number;
  processedAtMs: number;
}

/** `${inputId}/${kind}` for an input; `${userId}:${kind}:${grantId}:${atMs}` for time. */
function idFor(state: MemberState, kind: NotificationKind, m: Moment, suffix = ""): string {
  return m.inputId !== null
    ? `${m.inputId}/${kind}${suffix}`
    : `${state.userId}:${kind}:${m.grantId}:${m.atMs}${suffix}`;
}

function notice(
  state: MemberState,
  config: EngineConfig,
  kind: NotificationKind,
  id: string,
  m: Moment,
  d: Details,
): Notification {
  const tier = tierById(config, state.tier.tierId);
  const { spendableMicros, capacityMicros } = sumsAt(state, tier, m.atMs);
  return {
    id,
    kind,
    userId: state.userId,
    inputId: m.inputId,
    atMs: m.atMs,
    processedAtMs: m.processedAtMs,
    remainingMicros: Math.max(0, spendableMicros),
    capacityMicros,
    nextRefreshAtMs: nextRefreshAtMs(state, m.atMs),
    pause: d.pause ?? null,
    window: d.window ?? null,
    windowResetAtMs: d.windowResetAtMs ?? null,
    grantId: d.grantId ?? null,
    amountMicros: d.amountMicros ?? null,
    expiresAtMs: d.expiresAtMs ?? null,
    leadTime: d.leadTime ?? null,
  };
}

/**
 * Tells where the member now stands against the sides last told (kept in the state, changed in
 * place): `low_credit` / `credits_restored` when the balance crossed the tier's threshold,
 * `credits_exhausted` when nothing is spendable any more (leaving it tells nothing of its own).
 * The balance is the one the member sees: grants active at `atMs`. Allocates only to tell.
 */
function tellSides(
  state: MemberState,
  inputId: string | null,
  grantId: string,
  atMs: number,
  processedAtMs: number,
  config: EngineConfig,
  found: Found,
): Found {
  const tier = tierById(config, state.tier.tierId);
  const { spendableMicros, capacityMicros } = sumsAt(state, tier, atMs);
  const low = isLowCredit(spendableMicros, capacityMicros, tier.lowCreditThresholdPercent);
  const exhausted = spendableMicros <= 0;
  if (low === state.lowCreditNotified && exhausted === state.exhaustedNotified) return found;
  const m: Moment = { inputId, grantId, atMs, processedAtMs };
  let out = found;
  if (low !== state.lowCreditNotified) {
    state.lowCreditNotified = low;
    const kind = low ? "low_credit" : "credits_restored";
    out = added(out, notice(state, config, kind, idFor(state, kind, m), m, {}));
  }
  if (exhausted !== state.exhaustedNotified) {
    state.exhaustedNotified = exhausted;
    if (exhausted) {
      const pause = outOfCreditsPause(state, tier, atMs, config);
      const id = idFor(state, "credits_exhausted", m);
      out = added(out, notice(state, config, "credits_exhausted", id, m, { pause }));
    }
  }
  return out;
}

/** A window this usage filled: full now, and not already full before it in the same window. */
function tellWindow(
  before: UsageWindow | null,
  after: UsageWindow | null,
  capMicros: number | null,
  which: "5h" | "7d",
  lengthMs: number,
  state: MemberState,
  inputId: string,
  nowMs: number,
  config: EngineConfig,
  found: Found,
): Found {
  if (capMicros === null || after === null || after.usedMicros < capMicros) return found;
  const resetAtMs = after.startMs + lengthMs;
  if (nowMs >= resetAtMs) return found; // a late event's window that has already ended
  if (before !== null && before.startMs === after.startMs && before.usedMicros >= capMicros) {
    return found;
  }
  const m: Moment = { inputId, grantId: "", atMs: nowMs, processedAtMs: nowMs };
  const tier = tierById(config, state.tier.tierId);
  const pause = windowCapPause(state, tier, m.atMs, config) ?? undefined;
  const id = idFor(state, "window_cap_reached", m, `:${which}`);
  return added(
    found,
    notice(state, config, "window_cap_reached", id, m, {
      pause,
      window: which,
      windowResetAtMs: resetAtMs,
    }),
  );
}

/**
 * What an applied input tells, looked at once it is applied (`after`, at `nowMs`): the sides, and
 * for usage the windows it filled (`before`: the state it was applied to).
 */
export function tellInput(
  before: MemberState,
  after: MemberState,
  inputId: string,
  isUsage: boolean,
  nowMs: number,
  config: EngineConfig,
  found: Found,
): Found {
  let out = tellSides(after, inputId, "", nowMs, nowMs, config, found);
  if (isUsage) {
    const tier = tierById(config, after.tier.tierId);
    const w5 = tier.window5hCapMicros;
    const w7 = tier.window7dCapMicros;
    out = tellWindow(
      before.window5h,
      after.window5h,
      w5,
      "5h",
      WINDOW_5H_MS,
      after,
      inputId,
      nowMs,
      config,
      out,
    );
    out = tellWindow(
      before.window7d,
      after.window7d,
      w7,
      "7d",
      WINDOW_7D_MS,
      after,
      inputId,
      nowMs,
      config,
      out,
    );
  }
  return out;
}

/**
 * The time steps of one advance, told in time order. Steps at or before the clock the advance
 * started from (a grant a command adds already due) belong to that command's moment: their
 * sides are looked at with the command's.
 */
export class TimeTeller {
  #found: Found = null;
  readonly #state: MemberState;
  readonly #config: EngineConfig;
  readonly #processedAtMs: number;
  readonly #startMs: number;
  /** The instant whose sides are still to be looked at (after its last step), or -1. */
  #pendingAtMs = -1;
  #pendingGrantId = "";

  constructor(state: MemberState, config: EngineConfig, processedAtMs: number) {
    this.#state = state;
    this.#config = config;
    this.#processedAtMs = processedAtMs;
    this.#startMs = state.clockMs;
  }

  #moment(atMs: number, grantId: string): Moment {
    return { inputId: null, grantId, atMs, processedAtMs: this.#processedAtMs };
  }

  /** Looks at the sides of a finished instant unless the next step is at that instant too. */
  beforeStepAt(atMs: number | null): void {
    const pendingAtMs = this.#pendingAtMs;
    if (pendingAtMs < 0 || atMs === pendingAtMs) return;
    this.#pendingAtMs = -1;
    const s = this.#state;
    const grantId = this.#pendingGrantId;
    this.#found = tellSides(
      s,
      null,
      grantId,
      pendingAtMs,
      this.#processedAtMs,
      this.#config,
      this.#found,
    );
  }

  /** After a step changed credits (`grant`: the grant stepped; `wrote`: it made a ledger entry). */
  stepped(kind: "refresh" | "fallback" | "expire", atMs: number, grant: Grant, wrote: boolean) {
    const m = this.#moment(atMs, grant.id);
    const s = this.#state;
    if (kind === "refresh") {
      if (!wrote) return; // A refresh that changes nothing is no moment.
      const id = idFor(s, "refreshed", m);
      const d = { grantId: grant.id, amountMicros: grant.remainingMicros };
      this.#found = added(this.#found, notice(s, this.#config, "refreshed", id, m, d));
    } else if (kind === "expire" && wrote && grant.cls === "bonus") {
      const id = idFor(s, "bonus_expired", m);
      const d = {
        grantId: grant.id,
        amountMicros: grant.remainingMicros,
        expiresAtMs: grant.expiresAtMs ?? atMs,
      };
      this.#found = added(this.#found, notice(s, this.#config, "bonus_expired", id, m, d));
    }
    if (atMs > this.#startMs) {
      this.#pendingAtMs = atMs;
      this.#pendingGrantId = grant.id;
    }
  }

  /** `bonus_expiring` for every bonus whose lead time falls at `atMs` (nextLeadAt found it). */
  leadTimeAt(atMs: number): void {
    this.beforeStepAt(null);
    const s = this.#state;
    const m = this.#moment(atMs, "");
    for (const g of s.grants) {
      const lead = leadAt(g, atMs, this.#config.bonusLeadTimes);
      if (lead === null) continue;
      const id = `${s.userId}:bonus_expiring:${g.id}:${g.expiresAtMs}:${lead.name}`;
      const d = {
        grantId: g.id,
        amountMicros: g.remainingMicros,
        expiresAtMs: g.expiresAtMs ?? atMs,
        leadTime: lead.name,
      };
      this.#found = added(this.#found, notice(s, this.#config, "bonus_expiring", id, m, d));
    }
  }

  /** The notifications of the advance, after its last step. */
  finish(): Found {
    this.beforeStepAt(null);
    return this.#found;
  }
}

/** Whether a grant is told about at a lead time: a bonus with credits, active then. */
function leadCounts(g: Grant, atMs: number): boolean {
  return g.cls === "bonus" && g.remainingMicros > 0 && g.effectiveFromMs <= atMs;
}

/** The lead time of `g` that falls exactly at `atMs`, if it is told about then. */
function leadAt(g: Grant, atMs: number, leads: readonly BonusLeadTime[]): BonusLeadTime | null {
  if (g.expiresAtMs === null || !leadCounts(g, atMs)) return null;
  for (const lead of leads) if (g.expiresAtMs - lead.beforeMs === atMs) return lead;
  return null;
}

/**
 * The earliest lead-time instant in (afterMs, untilMs] of a bonus told about then, or null.
 * `leads` are longest first, so a grant's instants come in time order.
 */
export function nextLeadAt(
  state: MemberState,
  afterMs: number,
  untilMs: number,
  leads: readonly BonusLeadTime[],
): number | null {
  if (leads.length === 0) return null;
  const longestMs = leads[0]!.beforeMs;
  let best: number | null = null;
  for (const g of state.grants) {
    const exp = g.expiresAtMs;
    // Runs on every apply: most grants are out at the first comparisons.
    if (exp === null || exp - longestMs > untilMs || g.cls !== "bonus" || g.remainingMicros === 0) {
      continue;
    }
    for (const lead of leads) {
      const at = exp - lead.beforeMs;
      if (at <= afterMs || at < g.effectiveFromMs) continue;
      if (at <= untilMs && (best === null || at < best)) best = at;
      break;
    }
  }
  return best;
}

/** Whether a lead time falls after the state's clock and by `untilMs` (apply then advances). */
export function leadDue(state: MemberState, untilMs: number, config: EngineConfig): boolean {
  return nextLeadAt(state, state.clockMs, untilMs, config.bonusLeadTimes) !== null;
}
