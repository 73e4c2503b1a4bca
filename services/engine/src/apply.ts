// The one entry point that changes a member's credits: apply(state, input, ctx) for a usage event or
// a credit command. Pure: the caller's state is never changed; a refusal changes nothing.

import { advanceInPlace, EntryWriter, stepDue } from "./advance.ts";
import { boundaryAt, firstBoundaryIndexAfter } from "./calendar.ts";
import { assert } from "./errors.ts";
import { fingerprintInput, hash53 } from "./fingerprint.ts";
import {
  MAX_GRANT_MICROS,
  MAX_GRANTS,
  MAX_ID_LENGTH,
  MAX_RECENT_TASKS,
  MAX_TIME_MS,
  MAX_TOKENS_PER_EVENT,
  WINDOW_5H_MS,
  WINDOW_7D_MS,
} from "./limits.ts";
import { type Found, leadDue, NO_NOTIFICATIONS, tellInput } from "./notifications.ts";
import { priceUsage } from "./pricing.ts";
import {
  debitableGrants,
  debitOrder,
  type EngineContext,
  endOfNextFullCycleMs,
  isEligibleAt,
  ownGrantsAndTier,
  shallowCopy,
  tierById,
} from "./state.ts";
import {
  type AdjustCommand,
  AGENT_TASK_KINDS,
  type ApplyResult,
  type CreditCommand,
  type EngineInput,
  FEATURES,
  type Grant,
  type GrantBonusCommand,
  type LedgerEntry,
  type MemberState,
  type MigrateLegacyCommand,
  type Notification,
  type Refusal,
  type RefusalReason,
  type RevokeGrantCommand,
  type SubscriptionChangeCommand,
  type SubscriptionStartCommand,
  type UsageEvent,
  type UsageWindow,
} from "./types.ts";

function refusal(reason: RefusalReason, field: string | null, message: string): Refusal {
  return { reason, field, message };
}

const isTime = (v: unknown): v is number =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= 0 && v <= MAX_TIME_MS;
const isCount = (v: unknown, max: number): v is number =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= 0 && v <= max;
const isId = (v: unknown): v is string =>
  typeof v === "string" && v.length > 0 && v.length <= MAX_ID_LENGTH;

function badTokens(field: "inputTokens" | "outputTokens" | "cachedInputTokens"): Refusal {
  return refusal(
    "invalid_input",
    field,
    `${field} must be an integer from 0 to ${MAX_TOKENS_PER_EVENT}`,
  );
}

/** Shape checks at the edge: wrong values are refused naming the field, never thrown. */
function checkInput(input: EngineInput): Refusal | null {
  if (!isId(input.id)) return refusal("invalid_input", "id", "id must be 1 to 200 characters");
  if (!isId(input.userId))
    return refusal("invalid_input", "userId", "userId must be 1 to 200 characters");
  if (input.type === "usage") {
    if (!isId(input.taskId))
      return refusal("invalid_input", "taskId", "taskId must be 1 to 200 characters");
    if (!(FEATURES as readonly string[]).includes(input.feature)) {
      return refusal("unknown_feature", "feature", `unknown feature "${input.feature}"`);
    }
    if (input.taskKind !== null) {
      if (
        input.feature !== "agent" ||
        !(AGENT_TASK_KINDS as readonly string[]).includes(input.taskKind)
      ) {
        return refusal(
          "invalid_input",
          "taskKind",
          `taskKind "${input.taskKind}" is not an agent task kind`,
        );
      }
    }
    if (!isCount(input.inputTokens, MAX_TOKENS_PER_EVENT)) return badTokens("inputTokens");
    if (!isCount(input.outputTokens, MAX_TOKENS_PER_EVENT)) return badTokens("outputTokens");
    if (!isCount(input.cachedInputTokens, MAX_TOKENS_PER_EVENT))
      return badTokens("cachedInputTokens");
    if (!isTime(input.eventAtMs))
      return refusal("invalid_input", "eventAtMs", "eventAtMs must be epoch ms");
    return null;
  }
  if (!isTime(input.atMs)) return refusal("invalid_input", "atMs", "atMs must be epoch ms");
  return null;
}

/**
 * Applies a usage event or a credit command at processing time `ctx.nowMs`: first the time that
 * passed (resets, expiries), then the input. The edge of the duplicate horizon is checked first,
 * then idempotency, both before any limit.
 *
 * `acceptedAtMs` is when creditflow accepted the input (the Kafka record's timestamp; processing
 * time when there is none). Ids are remembered for `config.dedupeHorizonMs` of the member's
 * acceptance clock (the latest acceptance time seen), and an input whose own time is older than
 * the horizon by that clock is refused `too_old`: its first copy may already be forgotten, so it
 * can no longer be told from a repeat. A copy accepted within the horizon of its first copy always
 * finds it: the first copy is kept while max(own time, acceptance time) is inside the horizon.
 */
export function apply(
  state: MemberState,
  input: EngineInput,
  ctx: EngineContext,
  acceptedAtMs: number = ctx.nowMs,
): ApplyResult {
  assert(Number.isSafeInteger(ctx.nowMs) && ctx.nowMs >= 0, "ctx.nowMs is epoch ms");
  assert(Number.isSafeInteger(acceptedAtMs) && acceptedAtMs >= 0, "acceptedAtMs is epoch ms");
  const memory = state.applied;
  const horizonMs = ctx.config.dedupeHorizonMs;
  const ownMs = input.type === "usage" ? input.eventAtMs : input.atMs;
  const horizonClockMs = Math.max(memory.clockMs, acceptedAtMs);
  if (isTime(ownMs) && ownMs < horizonClockMs - horizonMs) {
    // Past the horizon its first copy may be forgotten: refused whether or not it still is, so
    // the answer never depends on what the memory happens to hold. Not remembered: the horizon's
    // clock only moves forward, so a repeat is refused the same way.
    return refused(state, tooOld(input, horizonClockMs, horizonMs));
  }
  const fingerprint = fingerprintInput(input);
  const idHash = typeof input.id === "string" ? hash53(input.id) : 0;
  // Ids remembered with their content fingerprint: a repeat answers as the first time.
  const seen = memory.indexOf(input.id, idHash);
  if (seen >= 0) {
    if (memory.fingerprintAt(seen) !== fingerprint) return refused(state, conflictWith(input.id));
    const firstRefusal = memory.refusalAt(seen);
    if (firstRefusal !== null) return refused(state, firstRefusal);
    const known = memory.entriesAt(seen);
    return {
      state,
      entries: known ?? [],
      notifications: NO_NOTIFICATIONS,
      outcome: { status: "duplicate", entriesKnown: known !== null },
    };
  }
  const older = typeof input.id === "string" ? memory.findCompact(input.id) : null;
  if (older !== null) {
    if (older.fingerprint !== fingerprint) return refused(state, conflictWith(input.id));
    if (older.refusal !== null) return refused(state, older.refusal);
    return {
      state,
      entries: [],
      notifications: NO_NOTIFICATIONS,
      outcome: { status: "duplicate", entriesKnown: false },
    };
  }
  const bad = checkInput(input);
  if (bad !== null) {
    // An input without a usable id or for another member cannot be remembered here.
    if (bad.field === "id" || bad.field === "userId") return refused(state, bad);
    const atSec = Math.ceil(acceptedAtMs / 1000);
    return refusedAndRemembered(
      state,
      input.id,
      idHash,
      fingerprint,
      bad,
      atSec,
      acceptedAtMs,
      horizonMs,
    );
  }
  const atSec = Math.ceil(Math.max(ownMs, acceptedAtMs) / 1000);
  if (input.userId !== state.userId) {
    return refused(state, refusal("user_mismatch", "userId", "the input is for another member"));
  }

  // Copy on write: the new state shares what this apply does not change with the caller's state.
  // Time-driven steps and commands change grants and the tier in place on private copies; a usage
  // event copies only the grants it debits, and replaces windows, tasks and the id memory.
  const next = shallowCopy(state);
  const entries: LedgerEntry[] = [];
  const nowMs = Math.max(ctx.nowMs, state.clockMs);
  let grantsShared = true;
  let found: Found = null;
  if (
    input.type !== "usage" ||
    stepDue(state, nowMs, ctx.config.plans.allowedLatenessMs) ||
    leadDue(state, nowMs, ctx.config)
  ) {
    ownGrantsAndTier(next);
    grantsShared = false;
    found = advanceInPlace(next, nowMs, entries, ctx, found);
  } else if (nowMs > next.clockMs) {
    next.clockMs = nowMs;
  }
  const writer = new EntryWriter(next, entries, nowMs);
  const result =
    input.type === "usage"
      ? applyUsage(next, input, nowMs, writer, ctx, grantsShared)
      : applyCommand(next, input, nowMs, writer, ctx);
  if (
    result === null &&
    input.type !== "usage" &&
    stepDue(next, nowMs, ctx.config.plans.allowedLatenessMs)
  ) {
    // A command can add a grant that is already due (a bonus that expired more than the allowed
    // lateness ago, a recurrence past its boundary): its steps run now, in this apply, so that an
    // advance to the same time later finds nothing left to do.
    found = advanceInPlace(next, nowMs, entries, ctx, found);
  }
  if (result !== null) {
    return refusedAndRemembered(
      state,
      input.id,
      idHash,
      fingerprint,
      result,
      atSec,
      acceptedAtMs,
      horizonMs,
    );
  }

  found = tellInput(state, next, input.id, input.type === "usage", nowMs, ctx.config, found);
  // An exact-size copy: the entries stay in the id memory (the list grown by push has spare room).
  const made = entries.slice();
  next.applied = state.applied.remember(
    input.id,
    idHash,
    fingerprint,
    made,
    null,
    atSec,
    acceptedAtMs,
    horizonMs,
  );
  return {
    state: next,
    entries: made,
    notifications: found ?? NO_NOTIFICATIONS,
    outcome: { status: "applied" },
  };
}

function refused(state: MemberState, r: Refusal): ApplyResult {
  return {
    state,
    entries: [],
    notifications: NO_NOTIFICATIONS,
    outcome: { status: "refused", refusal: r },
  };
}

function conflictWith(id: string): Refusal {
  return refusal("conflict", "id", `id ${id} was used with other content`);
}

function tooOld(input: EngineInput, horizonClockMs: number, horizonMs: number): Refusal {
  const field = input.type === "usage" ? "eventAtMs" : "atMs";
  return refusal(
    "too_old",
    field,
    `${field} is older than the duplicate horizon (${horizonMs} ms before ${new Date(horizonClockMs).toISOString()})`,
  );
}

/**
 * A refusal changes no credits and no time, but is remembered: a repeat of the same id and content
 * answers the same refusal even if the state would now allow it (one id, one effect).
 */
function refusedAndRemembered(
  state: MemberState,
  id: string,
  idHash: number,
  fingerprint: number,
  r: Refusal,
  atSec: number,
  acceptedAtMs: number,
  horizonMs: number,
): ApplyResult {
  const next = shallowCopy(state);
  next.applied = state.applied.remember(
    id,
    idHash,
    fingerprint,
    null,
    r,
    atSec,
    acceptedAtMs,
    horizonMs,
  );
  return refused(next, r);
}

/** Applies inputs in order (one call over a sequence equals the same sequence split into calls). */
export function applyAll(
  state: MemberState,
  inputs: readonly EngineInput[],
  ctx: EngineContext,
): {
  state: MemberState;
  entries: LedgerEntry[];
  notifications: Notification[];
  outcomes: ApplyResult["outcome"][];
} {
  let s = state;
  const entries: LedgerEntry[] = [];
  const notifications: Notification[] = [];
  const outcomes: ApplyResult["outcome"][] = [];
  for (const input of inputs) {
    const r = apply(s, input, ctx);
    s = r.state;
    for (const e of r.entries) entries.push(e);
    for (const n of r.notifications) notifications.push(n);
    outcomes.push(r.outcome);
  }
  return { state: s, entries, notifications, outcomes };
}

// ---------------------------------------------------------------------------------------------
// Usage

/**
 * Debits one usage event: bonus grants before subscription grants, in debit order, among grants
 * eligible at the event's time. The event's time is taken inside [now - lateness, now]: a late
 * event within the lateness uses the grants active at its own time; an older one is judged at the
 * lateness edge (its grants are gone); a future one at now. A shortfall is an overdraft entry.
 */
function applyUsage(
  state: MemberState,
  event: UsageEvent,
  nowMs: number,
  w: EntryWriter,
  ctx: EngineContext,
  grantsShared: boolean,
): Refusal | null {
  const cost = priceUsage(ctx.config.rateCard, event.feature, event.model, event);
  if (cost === null) {
    return refusal("unknown_model", "model", `no rate for ${event.feature} model "${event.model}"`);
  }
  const lateness = ctx.config.plans.allowedLatenessMs;
  const atMs = Math.min(nowMs, Math.max(event.eventAtMs, nowMs - lateness));

  let left = cost;
  let index = 0;
  let shared = grantsShared;
  // Debit order without sorting every grant: pick the first grant in debit order, debit it; it is
  // then either empty (no longer debitable) or it covered the rest. Ties keep the held order, as
  // the stable sort of debitableGrants does.
  while (left > 0) {
    const grants = state.grants;
    let best = -1;
    for (let i = 0; i < grants.length; i++) {
      const g = grants[i]!;
      if (g.remainingMicros > 0 && isEligibleAt(g, atMs)) {
        if (best < 0 || debitOrder(g, grants[best]!) < 0) best = i;
      }
    }
    if (best < 0) break;
    if (shared) {
      // The caller's state holds these grants: debit copies in a copy of the list.
      state.grants = grants.slice();
      shared = false;
    }
    let g = state.grants[best]!;
    if (grantsShared) {
      g = { ...g };
      state.grants[best] = g;
    }
    const take = Math.min(left, g.remainingMicros);
    g.remainingMicros -= take;
    left -= take;
    w.add(
      `${event.id}#${index++}`,
      "debit",
      g.id,
      g.cls,
      -take,
      0,
      event.feature,
      event.taskId,
      event.eventAtMs,
    );
  }
  if (left > 0) {
    // A task in progress always completes: record the shortfall; carry it only if configured.
    const carry = ctx.config.plans.overdraft === "carry";
    if (carry) state.debtMicros += left;
    w.add(
      `${event.id}#${index++}`,
      "overdraft",
      null,
      null,
      carry ? -left : 0,
      left,
      event.feature,
      event.taskId,
      event.eventAtMs,
    );
  }
  state.window5h = addToWindow(state.window5h, atMs, cost, WINDOW_5H_MS);
  state.window7d = addToWindow(state.window7d, atMs, cost, WINDOW_7D_MS);
  recordTask(state, event, cost);
  return null;
}

/** A window starts at the first usage after the previous one ended (a new object: no caller sees a change). */
function addToWindow(
  window: UsageWindow | null,
  atMs: number,
  costMicros: number,
  lengthMs: number,
): UsageWindow {
  if (window === null || atMs >= window.startMs + lengthMs) {
    return { startMs: atMs, usedMicros: costMicros };
  }
  return { startMs: window.startMs, usedMicros: window.usedMicros + costMicros };
}

/** Adds the event to its task's summary (a new list and summary: the caller's stay as they were). */
function recordTask(state: MemberState, event: UsageEvent, cost: number): void {
  const old = state.recentTasks;
  let i = -1;
  for (let k = 0; k < old.length; k++) {
    if (old[k]!.taskId === event.taskId) {
      i = k;
      break;
    }
  }
  if (i === 0) {
    // The common case: the next step of the newest task.
    const t = old[0]!;
    const tasks = old.slice();
    tasks[0] = {
      taskId: t.taskId,
      feature: t.feature,
      taskKind: t.taskKind,
      firstAtMs: Math.min(t.firstAtMs, event.eventAtMs),
      lastAtMs: Math.max(t.lastAtMs, event.eventAtMs),
      costMicros: t.costMicros + cost,
    };
    state.recentTasks = tasks;
    return;
  }
  const summary =
    i < 0
      ? {
          taskId: event.taskId,
          feature: event.feature,
          taskKind: event.taskKind,
          firstAtMs: event.eventAtMs,
          lastAtMs: event.eventAtMs,
          costMicros: cost,
        }
      : {
          taskId: old[i]!.taskId,
          feature: old[i]!.feature,
          taskKind: old[i]!.taskKind,
          firstAtMs: Math.min(old[i]!.firstAtMs, event.eventAtMs),
          lastAtMs: Math.max(old[i]!.lastAtMs, event.eventAtMs),
          costMicros: old[i]!.costMicros + cost,
        };
  const tasks = [summary];
  for (let k = 0; k < old.length && tasks.length < MAX_RECENT_TASKS; k++) {
    if (k !== i) tasks.push(old[k]!);
  }
  state.recentTasks = tasks;
}

// ---------------------------------------------------------------------------------------------
// Commands

function applyCommand(
  state: MemberState,
  cmd: CreditCommand,
  nowMs: number,
  w: EntryWriter,
  ctx: EngineContext,
): Refusal | null {
  switch (cmd.type) {
    case "grant_bonus":
      return grantBonus(state, cmd, nowMs, w);
    case "subscription_start":
      return startSubscription(state, cmd, nowMs, w, ctx);
    case "subscription_change":
      return changeSubscription(state, cmd, nowMs, w, ctx);
    case "subscription_cancel":
      return cancelSubscription(state, nowMs);
    case "revoke_grant":
      return revokeGrant(state, cmd, w);
    case "adjust":
      return adjust(state, cmd, nowMs, w);
    case "migrate_legacy":
      return migrateLegacy(state, cmd, nowMs, w, ctx);
    default:
      return refusal(
        "invalid_input",
        "type",
        `unknown input type "${(cmd as { type: string }).type}"`,
      );
  }
}

function commandEntry(
  cmd: CreditCommand,
  grant: Grant,
  kind: LedgerEntry["kind"],
  amountMicros: number,
  index = 0,
): Omit<LedgerEntry, "userId" | "balanceAfterMicros" | "processedAtMs"> {
  return {
    id: `${cmd.id}#${index}`,
    kind,
    grantId: grant.id,
    cls: grant.cls,
    amountMicros,
    detailMicros: 0,
    feature: null,
    taskId: null,
    eventAtMs: cmd.atMs,
  };
}

function isAmount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v > 0 && v <= MAX_GRANT_MICROS;
}

function grantBonus(
  state: MemberState,
  cmd: GrantBonusCommand,
  nowMs: number,
  w: EntryWriter,
): Refusal | null {
  if (!isAmount(cmd.amountMicros)) {
    return refusal(
      "invalid_input",
      "amountMicros",
      `amountMicros must be an integer from 1 to ${MAX_GRANT_MICROS}`,
    );
  }
  if (!isTime(cmd.effectiveFromMs))
    return refusal("invalid_input", "effectiveFromMs", "effectiveFromMs must be epoch ms");
  if (!isTime(cmd.expiresAtMs) || cmd.expiresAtMs <= cmd.effectiveFromMs) {
    return refusal(
      "invalid_input",
      "expiresAtMs",
      "expiresAtMs must be epoch ms after effectiveFromMs",
    );
  }
  if (!Number.isSafeInteger(cmd.priority))
    return refusal("invalid_input", "priority", "priority must be an integer");
  if (!["trial", "promotion", "purchase", "adjustment"].includes(cmd.source)) {
    return refusal("invalid_input", "source", `unknown bonus source "${cmd.source}"`);
  }
  if (cmd.recurrence !== null && !["5h", "7d", "1mo"].includes(cmd.recurrence)) {
    return refusal("invalid_input", "recurrence", "recurrence must be 5h, 7d, 1mo or null");
  }
  if (state.grants.some((g) => g.id === cmd.id))
    return refusal("invalid_input", "id", "a grant with this id exists");
  if (state.grants.length >= MAX_GRANTS)
    return refusal("too_many_grants", null, `a member holds at most ${MAX_GRANTS} grants`);
  const recurrence =
    cmd.recurrence === null
      ? null
      : {
          period: cmd.recurrence,
          anchorMs: cmd.effectiveFromMs,
          nextIndex: firstBoundaryIndexAfter(
            cmd.recurrence,
            cmd.effectiveFromMs,
            Math.max(nowMs, cmd.effectiveFromMs),
          ),
        };
  if (
    recurrence !== null &&
    boundaryAt(recurrence.period, recurrence.anchorMs, recurrence.nextIndex) >= cmd.expiresAtMs
  ) {
    return refusal("invalid_input", "recurrence", "the grant expires before its first refresh");
  }
  const grant: Grant = {
    id: cmd.id,
    cls: "bonus",
    source: cmd.source,
    amountMicros: cmd.amountMicros,
    remainingMicros: cmd.amountMicros,
    effectiveFromMs: cmd.effectiveFromMs,
    expiresAtMs: cmd.expiresAtMs,
    priority: cmd.priority,
    createdAtMs: nowMs,
    recurrence,
  };
  state.grants.push(grant);
  w.push(commandEntry(cmd, grant, "grant", grant.amountMicros));
  return null;
}

function tierGrant(state: MemberState): Grant {
  const g = state.grants.find((x) => x.id === state.tier.grantId);
  assert(g !== undefined, "the tier grant is held");
  return g;
}

/** Upgrade now: the allowance becomes the new tier's and the remaining grows by the difference. */
function upgradeTierGrant(grant: Grant, newAllowance: number, cmd: CreditCommand, w: EntryWriter) {
  const diff = newAllowance - grant.amountMicros;
  assert(diff >= 0, "an upgrade does not lower the allowance (plans are checked)");
  grant.amountMicros = newAllowance;
  grant.remainingMicros += diff;
  if (diff > 0) w.push(commandEntry(cmd, grant, "grant", diff));
}

function startSubscription(
  state: MemberState,
  cmd: SubscriptionStartCommand,
  nowMs: number,
  w: EntryWriter,
  ctx: EngineContext,
): Refusal | null {
  const tier = ctx.config.tiersById.get(cmd.tierId);
  if (tier === undefined || tier.id === ctx.config.plans.freeTierId) {
    return refusal("unknown_tier", "tierId", `no paid tier "${cmd.tierId}"`);
  }
  if (cmd.billing !== "monthly" && cmd.billing !== "annual") {
    return refusal("invalid_input", "billing", "billing must be monthly or annual");
  }
  if (state.tier.billing !== "free")
    return refusal("already_subscribed", null, "the member has a subscription");
  const grant = tierGrant(state);
  upgradeTierGrant(grant, tier.monthlyAllowanceMicros, cmd, w);
  // The paid cycle is anchored at the start: resets follow the subscription's start day.
  grant.recurrence = { period: "1mo", anchorMs: nowMs, nextIndex: 1 };
  state.tier = {
    ...state.tier,
    tierId: tier.id,
    billing: cmd.billing,
    anchorMs: nowMs,
    pendingTierId: null,
    cancelAtMs: null,
  };
  return null;
}

function changeSubscription(
  state: MemberState,
  cmd: SubscriptionChangeCommand,
  _nowMs: number,
  w: EntryWriter,
  ctx: EngineContext,
): Refusal | null {
  const tier = ctx.config.tiersById.get(cmd.tierId);
  if (tier === undefined) return refusal("unknown_tier", "tierId", `no tier "${cmd.tierId}"`);
  if (state.tier.billing === "free")
    return refusal("no_subscription", null, "the member has no subscription");
  if (tier.id === ctx.config.plans.freeTierId) {
    return refusal("invalid_input", "tierId", "moving to the free tier is a cancel");
  }
  if (state.tier.cancelAtMs !== null)
    return refusal("already_cancelled", null, "the subscription is cancelled");
  const current = tierById(ctx.config, state.tier.tierId);
  if (tier.id === current.id) {
    if (state.tier.pendingTierId === null)
      return refusal("same_tier", "tierId", `already on "${tier.id}"`);
    state.tier.pendingTierId = null; // Staying: the pending downgrade is dropped.
    return null;
  }
  if (tier.rank > current.rank) {
    upgradeTierGrant(tierGrant(state), tier.monthlyAllowanceMicros, cmd, w);
    state.tier.tierId = tier.id;
    state.tier.pendingTierId = null;
  } else {
    state.tier.pendingTierId = tier.id; // A downgrade waits for the next monthly reset.
  }
  return null;
}

/** Keeps the paid grant to the end of the paid cycle (a month, or a year for annual billing). */
function cancelSubscription(state: MemberState, nowMs: number): Refusal | null {
  if (state.tier.billing === "free")
    return refusal("no_subscription", null, "the member has no subscription");
  if (state.tier.cancelAtMs !== null)
    return refusal("already_cancelled", null, "the subscription is cancelled");
  const step = state.tier.billing === "annual" ? 12 : 1;
  const n = firstBoundaryIndexAfter("1mo", state.tier.anchorMs, nowMs, step);
  const endMs = boundaryAt("1mo", state.tier.anchorMs, n);
  const grant = tierGrant(state);
  grant.expiresAtMs = endMs;
  if (
    grant.recurrence !== null &&
    boundaryAt("1mo", grant.recurrence.anchorMs, grant.recurrence.nextIndex) >= endMs
  ) {
    grant.recurrence = null;
  }
  state.tier.cancelAtMs = endMs;
  state.tier.pendingTierId = null;
  return null;
}

function revokeGrant(state: MemberState, cmd: RevokeGrantCommand, w: EntryWriter): Refusal | null {
  const i = state.grants.findIndex((g) => g.id === cmd.grantId);
  if (i < 0) return refusal("unknown_grant", "grantId", `no grant "${cmd.grantId}"`);
  const grant = state.grants[i]!;
  if (grant.id === state.tier.grantId) {
    return refusal("cannot_revoke_tier_grant", "grantId", "the tier grant ends with a cancel");
  }
  state.grants.splice(i, 1);
  w.push(commandEntry(cmd, grant, "revoke", 0 - grant.remainingMicros));
  return null;
}

/**
 * Gives the member a grant made by a command now (priority 0, no recurrence) with its ledger
 * entry, unless they already hold the most grants.
 */
function addCommandGrant(
  state: MemberState,
  cmd: CreditCommand,
  nowMs: number,
  w: EntryWriter,
  kind: LedgerEntry["kind"],
  made: Pick<Grant, "cls" | "source" | "amountMicros" | "expiresAtMs">,
): Refusal | null {
  if (state.grants.length >= MAX_GRANTS)
    return refusal("too_many_grants", null, `a member holds at most ${MAX_GRANTS} grants`);
  const grant: Grant = {
    id: cmd.id,
    cls: made.cls,
    source: made.source,
    amountMicros: made.amountMicros,
    remainingMicros: made.amountMicros,
    effectiveFromMs: nowMs,
    expiresAtMs: made.expiresAtMs,
    priority: 0,
    createdAtMs: nowMs,
    recurrence: null,
  };
  state.grants.push(grant);
  w.push(commandEntry(cmd, grant, kind, made.amountMicros));
  return null;
}

function adjust(
  state: MemberState,
  cmd: AdjustCommand,
  nowMs: number,
  w: EntryWriter,
): Refusal | null {
  const amount = cmd.amountMicros;
  if (!Number.isSafeInteger(amount) || amount === 0 || Math.abs(amount) > MAX_GRANT_MICROS) {
    return refusal(
      "invalid_input",
      "amountMicros",
      `amountMicros must be a non-zero integer within ±${MAX_GRANT_MICROS}`,
    );
  }
  if (amount > 0) {
    if (!isTime(cmd.expiresAtMs) || cmd.expiresAtMs <= nowMs) {
      return refusal(
        "invalid_input",
        "expiresAtMs",
        "a positive adjustment needs expiresAtMs in the future",
      );
    }
    if (state.grants.some((g) => g.id === cmd.id))
      return refusal("invalid_input", "id", "a grant with this id exists");
    return addCommandGrant(state, cmd, nowMs, w, "adjust", {
      cls: "bonus",
      source: "adjustment",
      amountMicros: amount,
      expiresAtMs: cmd.expiresAtMs,
    });
  }
  const grants = debitableGrants(state, nowMs);
  let available = 0;
  for (const g of grants) available += g.remainingMicros;
  if (available < -amount) {
    return refusal("insufficient_balance", "amountMicros", `only ${available} micros can be taken`);
  }
  let left = -amount;
  let index = 0;
  for (const g of grants) {
    const take = Math.min(left, g.remainingMicros);
    g.remainingMicros -= take;
    left -= take;
    w.push(commandEntry(cmd, g, "adjust", -take, index++));
    if (left === 0) break;
  }
  return null;
}

/**
 * Converts unused legacy uses in full at the per-feature conversion rate, once per member, as a
 * subscription-class grant lasting to the end of the next full cycle.
 */
function migrateLegacy(
  state: MemberState,
  cmd: MigrateLegacyCommand,
  nowMs: number,
  w: EntryWriter,
  ctx: EngineContext,
): Refusal | null {
  if (state.migrated) return refusal("already_migrated", null, "the member was migrated");
  const rates = ctx.config.plans.legacyConversionMicrosPerUse;
  if (typeof cmd.unusedUses !== "object" || cmd.unusedUses === null) {
    return refusal("invalid_input", "unusedUses", "unusedUses must be an object");
  }
  let total = 0;
  for (const [quota, uses] of Object.entries(cmd.unusedUses)) {
    if (!Object.hasOwn(rates, quota)) {
      return refusal(
        "unknown_legacy_quota",
        `unusedUses.${quota}`,
        `no conversion rate for "${quota}"`,
      );
    }
    if (!isCount(uses, 1_000_000)) {
      return refusal(
        "invalid_input",
        `unusedUses.${quota}`,
        "uses must be an integer from 0 to 1000000",
      );
    }
    total += uses * rates[quota]!;
  }
  if (total > MAX_GRANT_MICROS)
    return refusal("invalid_input", "unusedUses", "the converted amount is too large");
  if (total > 0) {
    const refused = addCommandGrant(state, cmd, nowMs, w, "migration", {
      cls: "subscription",
      source: "migration",
      amountMicros: total,
      expiresAtMs: endOfNextFullCycleMs(state, nowMs),
    });
    if (refused !== null) return refused;
  }
  state.migrated = true;
  return null;
}
