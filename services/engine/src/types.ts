// The engine's plain data: inputs (usage events, credit commands), a member's state, ledger entries
// and answers. No behaviour lives here (the id memory's sharing is in memory.ts). Amounts are integer
// micro-credits, times epoch milliseconds (UTC).

import type { IdMemory } from "./memory.ts";

/** Product features a member spends credits on. */
export const FEATURES = ["agent", "code", "claw", "chat", "image"] as const;
export type Feature = (typeof FEATURES)[number];

/**
 * Agent task kinds. They do not change the price (tokens do); `swarm` is gated by tier as the
 * capability `agent.swarm`.
 */
export const AGENT_TASK_KINDS = [
  "website",
  "docs",
  "ppt",
  "spreadsheet",
  "deep_research",
  "swarm",
] as const;
export type AgentTaskKind = (typeof AGENT_TASK_KINDS)[number];

/** What a tier may allow: every feature, plus `agent.swarm` for Agent Swarm tasks. */
export const CAPABILITIES = ["agent", "agent.swarm", "code", "claw", "chat", "image"] as const;
export type Capability = (typeof CAPABILITIES)[number];

export type GrantClass = "bonus" | "subscription";
export type GrantSource =
  | "trial"
  | "promotion"
  | "subscription"
  | "migration"
  | "purchase"
  | "adjustment";
export type RecurrencePeriod = "5h" | "7d" | "1mo";

/** Usage of one step of one task, as sent by a feature service. */
export interface UsageEvent {
  type: "usage";
  /** Chosen by the sender; the same id with the same content is applied once. */
  id: string;
  userId: string;
  /** One task is one transaction in the member's history: the sum of its usage events. */
  taskId: string;
  feature: Feature;
  /** Agent task kind (website, ppt, deep_research, swarm, ...); null for other features. */
  taskKind: AgentTaskKind | null;
  /** A model of the rate card for this feature. */
  model: string;
  /** Uncached input tokens, >= 0. */
  inputTokens: number;
  /** Output tokens, >= 0. */
  outputTokens: number;
  /** Input tokens served from the prompt cache, >= 0 (not counted in inputTokens). */
  cachedInputTokens: number;
  /** When the usage happened (producer clock). May be up to the allowed lateness in the past. */
  eventAtMs: number;
}

interface CommandBase {
  id: string;
  userId: string;
  /** When the sender issued the command (recorded; effects happen at processing time). */
  atMs: number;
}

/** Grant bonus credits (trial, promotion, purchase, support adjustment). */
export interface GrantBonusCommand extends CommandBase {
  type: "grant_bonus";
  source: "trial" | "promotion" | "purchase" | "adjustment";
  /** > 0. */
  amountMicros: number;
  effectiveFromMs: number;
  /** > effectiveFromMs; the unspent remainder is forfeited then. */
  expiresAtMs: number;
  /** Lower is debited first among grants expiring at the same time. */
  priority: number;
  /** Refill to the full amount every period from effectiveFromMs until expiry; null: one-off. */
  recurrence: RecurrencePeriod | null;
}

/** Start a paid subscription (from the free tier). The cycle is anchored at `atMs`. */
export interface SubscriptionStartCommand extends CommandBase {
  type: "subscription_start";
  tierId: string;
  billing: "monthly" | "annual";
}

/** Change the paid tier: an upgrade applies now, a downgrade at the next monthly reset. */
export interface SubscriptionChangeCommand extends CommandBase {
  type: "subscription_change";
  tierId: string;
}

/** Cancel: the paid grant lasts to the end of the paid cycle, then the member is on the free tier. */
export interface SubscriptionCancelCommand extends CommandBase {
  type: "subscription_cancel";
}

/** Remove a bonus or migration grant and its remainder. */
export interface RevokeGrantCommand extends CommandBase {
  type: "revoke_grant";
  grantId: string;
}

/**
 * Support adjustment. Positive: a new bonus grant (source adjustment) that expires at
 * `expiresAtMs`. Negative: debited in debit order; refused when the balance is short.
 */
export interface AdjustCommand extends CommandBase {
  type: "adjust";
  /** Non-zero. */
  amountMicros: number;
  /** Required for a positive adjustment, ignored for a negative one. */
  expiresAtMs: number | null;
  reason: string;
}

/** Convert unused legacy per-feature uses to credits, once per member. */
export interface MigrateLegacyCommand extends CommandBase {
  type: "migrate_legacy";
  /** Legacy quota name (a key of the plans' conversion table) -> unused uses (integer >= 0). */
  unusedUses: Record<string, number>;
}

export type CreditCommand =
  | GrantBonusCommand
  | SubscriptionStartCommand
  | SubscriptionChangeCommand
  | SubscriptionCancelCommand
  | RevokeGrantCommand
  | AdjustCommand
  | MigrateLegacyCommand;

export type EngineInput = UsageEvent | CreditCommand;

export interface Recurrence {
  period: RecurrencePeriod;
  /** Boundaries are anchorMs + n periods (months clamp to the month's last day). */
  anchorMs: number;
  /** Index n of the next boundary still to run; the next refresh is at boundary(n). */
  nextIndex: number;
}

export interface Grant {
  id: string;
  cls: GrantClass;
  source: GrantSource;
  /** > 0; what a reset refills to. */
  amountMicros: number;
  /** 0 <= remainingMicros <= amountMicros. */
  remainingMicros: number;
  /** Eligible for an event at t when effectiveFromMs <= t < expiresAtMs. */
  effectiveFromMs: number;
  /** null: never expires (the tier grant of an active subscription). */
  expiresAtMs: number | null;
  /** Lower first, inside one class and one expiry. */
  priority: number;
  /** Processing time of the grant's creation: "oldest first". */
  createdAtMs: number;
  recurrence: Recurrence | null;
}

export type Billing = "free" | "monthly" | "annual";

export interface TierState {
  tierId: string;
  billing: Billing;
  /** Cycle anchor: the subscription's start (sign-up for the free tier). */
  anchorMs: number;
  /** The grant holding the tier's monthly allowance. */
  grantId: string;
  /** A downgrade waiting for the next monthly reset. */
  pendingTierId: string | null;
  /** End of the paid cycle after a cancel; the member falls back to the free tier then. */
  cancelAtMs: number | null;
}

export interface UsageWindow {
  /** First usage after the previous window ended. */
  startMs: number;
  /** Cost of usage inside the window, >= 0. */
  usedMicros: number;
}

export interface TaskSummary {
  taskId: string;
  feature: Feature;
  taskKind: AgentTaskKind | null;
  firstAtMs: number;
  lastAtMs: number;
  /** Cost of the task's usage events, including any overdraft. */
  costMicros: number;
}

export type LedgerKind =
  | "debit"
  | "grant"
  | "expire"
  | "reset"
  | "overdraft"
  | "migration"
  | "adjust"
  | "revoke";

export interface LedgerEntry {
  /** Deterministic: `${causeId}#${index}` for inputs, `${userId}:${kind}:${grantId}:${atMs}` for time. */
  id: string;
  kind: LedgerKind;
  userId: string;
  grantId: string | null;
  cls: GrantClass | null;
  /** Signed change of the balance. The sum of a member's entries is their balance. */
  amountMicros: number;
  balanceAfterMicros: number;
  /**
   * overdraft: the shortfall (amountMicros is 0 when forgiven, -shortfall when carried).
   * reset: the unspent remainder dropped by the reset. Otherwise 0.
   */
  detailMicros: number;
  feature: Feature | null;
  taskId: string | null;
  /** Event time for usage, command time for commands, boundary time for expiries and resets. */
  eventAtMs: number;
  processedAtMs: number;
  /** Filled in by the consumer: where the causing record was read. */
  topic?: string;
  partition?: number;
  offset?: string;
}

/**
 * One remembered input: its id, a fingerprint of its content, and its first answer (the entries it
 * produced, or its refusal), so a repeat answers as the first time. Entries are kept for the last
 * MAX_REMEMBERED_ANSWERS inputs only (null after): they are already in the ledger.
 */
export interface AppliedRecord {
  id: string;
  fingerprint: number;
  entries: LedgerEntry[] | null;
  refusal: Refusal | null;
  /** Its horizon time: max(the input's own time, its acceptance time), whole seconds rounded up. */
  atSec: number;
}

export interface MemberState {
  userId: string;
  /** Latest time the state was advanced to; never decreases. */
  clockMs: number;
  tier: TierState;
  /** At most MAX_GRANTS, in creation order. */
  grants: Grant[];
  /** Carried overdraft, >= 0 (always 0 when overdraft is forgiven). Balance = sum(remaining) - debt. */
  debtMicros: number;
  window5h: UsageWindow | null;
  window7d: UsageWindow | null;
  migrated: boolean;
  /**
   * The side of the low-credit threshold and of "new tasks paused" the member was last told about
   * (notifications.ts); a new member has been told neither.
   */
  lowCreditNotified: boolean;
  exhaustedNotified: boolean;
  /** Newest first, at most MAX_RECENT_TASKS. */
  recentTasks: TaskSummary[];
  /**
   * Remembered inputs for the duplicate horizon, oldest first: the last MAX_REMEMBERED_IDS with
   * their text (`length`, `at`), older ones as compact records; iterable as `AppliedRecord`s
   * (`map`, `find`, `toArray`). Shared with the states before and after: it never changes, an
   * apply that remembers an id makes a new one.
   */
  applied: IdMemory;
}

export const REFUSAL_REASONS = [
  "conflict",
  "user_mismatch",
  "invalid_input",
  "unknown_feature",
  "unknown_model",
  "unknown_tier",
  "already_subscribed",
  "no_subscription",
  "already_cancelled",
  "same_tier",
  "unknown_grant",
  "cannot_revoke_tier_grant",
  "insufficient_balance",
  "already_migrated",
  "unknown_legacy_quota",
  "too_many_grants",
  /** Older than the duplicate horizon when accepted: it can no longer be told from a repeat. */
  "too_old",
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

export interface Refusal {
  reason: RefusalReason;
  /** The input field at fault, when there is one (`inputTokens`, `tierId`). */
  field: string | null;
  message: string;
}

export type Outcome =
  | { status: "applied" }
  /** entriesKnown: false when the first answer's entries are no longer remembered (entries: []). */
  | { status: "duplicate"; entriesKnown: boolean }
  | { status: "refused"; refusal: Refusal };

export interface ApplyResult {
  /** The new state; a refusal changes no credits but may remember the id (a repeat answers the same). */
  state: MemberState;
  /** New entries (applied), the first answer's entries (duplicate), none (refused). */
  entries: LedgerEntry[];
  /** What the member and services are told (applied only: a duplicate or refusal tells nothing). */
  notifications: readonly Notification[];
  outcome: Outcome;
}

export type PauseReason = "out_of_credits" | "window_cap" | "feature_not_in_tier";

export type Admission =
  | { allowed: true }
  | {
      allowed: false;
      reason: PauseReason;
      /** When the member can start again without upgrading: next refresh or window reset; null if never. */
      retryAtMs: number | null;
      nextRefreshAtMs: number | null;
      windowResetAtMs: number | null;
      /** The next tier up that would let the task run now; null when none does. */
      upgradeTierId: string | null;
    };

/** A paused admission answer: why new tasks are paused, when to retry, the upgrade. */
export type Pause = Extract<Admission, { allowed: false }>;

export const NOTIFICATION_KINDS = [
  "low_credit",
  "credits_restored",
  "credits_exhausted",
  "bonus_expiring",
  "bonus_expired",
  "window_cap_reached",
  "refreshed",
] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

/**
 * A fact worth telling the member and any service: made by the same apply or advance that makes
 * the ledger entries, once per crossing (notifications.ts). Fields a kind does not use are null.
 */
export interface Notification {
  /**
   * Deterministic from the cause: `${inputId}/${kind}` (`${inputId}/window_cap_reached:5h`) for an
   * input; `${userId}:${kind}:${grantId}:${atMs}` for time (the grant of the step);
   * `${userId}:bonus_expiring:${grantId}:${expiresAtMs}:${leadTime}` for a lead time.
   */
  id: string;
  kind: NotificationKind;
  userId: string;
  /** The input that caused it; null when time did (a reset, an expiry, a lead time). */
  inputId: string | null;
  /** The input's processing time, or the instant of the reset, expiry or lead time. */
  atMs: number;
  /** When the apply or advance that made it ran. */
  processedAtMs: number;
  /** Credits usable at `atMs` (active grants minus carried overdraft, >= 0), as the balance shows. */
  remainingMicros: number;
  /** Capacity at `atMs` (tier allowance plus every other active grant), as the balance shows. */
  capacityMicros: number;
  /** The earliest upcoming reset or refresh at `atMs`; null when none is scheduled. */
  nextRefreshAtMs: number | null;
  /** credits_exhausted and window_cap_reached: what admission answers from then on. */
  pause: Pause | null;
  /** window_cap_reached: the window that is full. */
  window: "5h" | "7d" | null;
  /** window_cap_reached: when that window ends. */
  windowResetAtMs: number | null;
  /** bonus_expiring, bonus_expired, refreshed: the grant. */
  grantId: string | null;
  /**
   * bonus_expiring: what the grant still holds; bonus_expired: what was forfeited; refreshed: what
   * the grant holds after the refresh.
   */
  amountMicros: number | null;
  /** bonus_expiring, bonus_expired: when the grant expires. */
  expiresAtMs: number | null;
  /** bonus_expiring: the lead time's name (plans `bonusExpiringLeadTimes`, e.g. `3d`). */
  leadTime: string | null;
}
