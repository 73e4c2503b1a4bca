// Named limits of the engine, each checked where it binds and all checked once at load.

import { assert } from "./errors.ts";

/** Micro-credits per credit. */
export const MICROS_PER_CREDIT = 1_000_000;
/**
 * Ids remembered per member with their full text (the most recent ones); older ids are kept as
 * compact fingerprints until the duplicate horizon has passed them (memory.ts).
 */
export const MAX_REMEMBERED_IDS = 64;
/**
 * Of the remembered ids, how many keep the entries they produced, to answer a repeat with them.
 * The consumer writes the ledger before the state, so older entries are never needed to rebuild it.
 */
export const MAX_REMEMBERED_ANSWERS = 8;
/** Grants a member may hold at once; a command that would exceed it is refused. */
export const MAX_GRANTS = 64;
/** Tasks kept for the usage history (the balance view shows the last 10). */
export const MAX_RECENT_TASKS = 10;
/** Tokens of one kind in one usage event. */
export const MAX_TOKENS_PER_EVENT = 100_000_000;
/** Rate per 1,000 tokens (10 credits): with MAX_TOKENS_PER_EVENT the cost stays a safe integer. */
export const MAX_RATE_MICROS_PER_1K = 10_000_000;
/** One grant or adjustment (10 million credits). */
export const MAX_GRANT_MICROS = 10_000_000 * MICROS_PER_CREDIT;
/** Time-driven steps (resets, expiries) one advance may run before it is a bug. */
export const MAX_ADVANCE_STEPS = 10_000;
/** Length of an id chosen by a sender. */
export const MAX_ID_LENGTH = 200;
/** Allowed lateness of usage data (docs/product-rules.md: up to 5 minutes); plans may lower or raise it. */
export const DEFAULT_ALLOWED_LATENESS_MS = 5 * 60 * 1000;
export const HOUR_MS = 60 * 60 * 1000;
/**
 * How long an id is remembered (docs/product-rules.md, "One id, one effect"): a repeat accepted within this
 * time of its first copy is a duplicate, whatever came in between; an input whose own time is
 * older than this when it is accepted is refused `too_old`. Plans may set 1 second to 35 days.
 */
export const DEFAULT_DEDUPE_HORIZON_MS = 24 * 60 * 60 * 1000;
export const MIN_DEDUPE_HORIZON_MS = 1000;
export const MAX_DEDUPE_HORIZON_MS = 35 * 24 * 60 * 60 * 1000;
export const DAY_MS = 24 * HOUR_MS;
export const WINDOW_5H_MS = 5 * HOUR_MS;
export const WINDOW_7D_MS = 7 * DAY_MS;
/** Named lead times plans may set for `bonus_expiring` notices (`bonusExpiringLeadTimes`). */
export const MAX_BONUS_LEAD_TIMES = 4;
/** The longest lead time before a bonus expires that plans may set (90 days). */
export const MAX_BONUS_LEAD_MS = 90 * DAY_MS;
/** Latest time the engine accepts (year 2200): keeps time arithmetic far from unsafe integers. */
export const MAX_TIME_MS = 7_258_118_400_000;

/** Checks the limits agree with each other; run at module load. */
export function checkLimits(): void {
  assert(
    MAX_REMEMBERED_IDS >= MAX_REMEMBERED_ANSWERS &&
      MAX_REMEMBERED_ANSWERS > 0 &&
      MAX_GRANTS > 0 &&
      MAX_RECENT_TASKS >= 10,
    "limits positive",
  );
  assert(
    Number.isSafeInteger(3 * MAX_TOKENS_PER_EVENT * MAX_RATE_MICROS_PER_1K),
    "largest event cost is a safe integer",
  );
  assert(Number.isSafeInteger(MAX_GRANTS * MAX_GRANT_MICROS * 4), "balances stay safe integers");
}
checkLimits();
