// @creditflow/engine: the credit rules of docs/product-rules.md as pure functions. The package's only door.

export { advanceTo, nextDeadlineMs } from "./advance.ts";
export { apply, applyAll } from "./apply.ts";
export { addMonthsClamped } from "./calendar.ts";
export { decodeState, encodeState, STATE_CODEC_VERSION } from "./codec.ts";
export {
  type BonusLeadTime,
  DEFAULT_BONUS_LEAD_TIMES,
  type EngineConfig,
  type ModelRate,
  makeConfig,
  type Plans,
  PlansSchema,
  parsePlans,
  parseRateCard,
  type RateCard,
  RateCardSchema,
  type Tier,
} from "./config.ts";
export {
  CreditflowError,
  type ErrorCodeList,
  type ErrorCodeSpec,
  errorCodes,
  OPTION_ERROR_CODES,
  OptionError,
} from "./creditflow-error.ts";
export {
  type ConfigIssue,
  ENGINE_ERROR_CODES,
  EngineError,
  type EngineErrorCode,
} from "./errors.ts";
export { fingerprintInput } from "./fingerprint.ts";
export * from "./limits.ts";
export type { IdMemory } from "./memory.ts";
export { priceUsage } from "./pricing.ts";
export {
  admitTask,
  type BalanceView,
  balanceView,
  capabilityOf,
  recentTransactions,
  type Transaction,
  type WindowView,
} from "./queries.ts";
export { debitOrder, type EngineContext, ledgerBalanceMicros, openMember } from "./state.ts";
export * from "./types.ts";
