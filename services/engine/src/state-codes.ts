// The codes a stored member state writes for names (codec.ts; codec-v1.ts for states stored before
// version 2): a name is stored as its index in one of these lists, so the lists never change order
// and only grow at their end.

import type { Billing, GrantClass, GrantSource, LedgerKind, RecurrencePeriod } from "./types.ts";

export const CLASSES: readonly GrantClass[] = ["bonus", "subscription"];
export const SOURCES: readonly GrantSource[] = [
  "trial",
  "promotion",
  "subscription",
  "migration",
  "purchase",
  "adjustment",
];
export const PERIODS: readonly RecurrencePeriod[] = ["5h", "7d", "1mo"];
/** Every kind of ledger entry. */
export const KINDS: readonly LedgerKind[] = [
  "debit",
  "grant",
  "expire",
  "reset",
  "overdraft",
  "migration",
  "adjust",
  "revoke",
];
export const BILLINGS: readonly Billing[] = ["free", "monthly", "annual"];
