// @creditflow/consumer: the deduction consumer (Kafka in, atomic idempotent apply in Redis,
// ledger out, dead letters, deadline sweeper). The only public door of the package.
export {
  applyToMembers,
  fillCache,
  type MemberWork,
  memberSignUpMs,
  type UnitResult,
} from "./apply-members.ts";
export { type CachedMember, MemberCache } from "./cache.ts";
export { type RunningConsumer, startConsumer } from "./consumer.ts";
export { CONSUMER_ERROR_CODES, ConsumerError, type ConsumerErrorCode } from "./errors.ts";
export { ConsumerMetrics } from "./metrics.ts";
export {
  type ConsumerLimits,
  type ConsumerOptions,
  DEFAULT_LIMITS,
  FAULT_STAGES,
  type FaultStage,
  LimitsSchema,
  resolveLimits,
} from "./options.ts";
export type { UnitStore } from "./unit-store.ts";
