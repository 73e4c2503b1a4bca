// @creditflow/ingest: HTTP ingest of usage events for services that cannot speak Kafka. The
// package's only public door.
export { TokenVerifier } from "./auth.ts";
export {
  type ErrorBody,
  INGEST_ERROR_CODES,
  INGEST_OPTION_ERROR_CODES,
  type IngestErrorCode,
  IngestOptionError,
  type IngestOptionErrorCode,
} from "./errors.ts";
export { createMetrics, type IngestMetrics } from "./metrics.ts";
export {
  checkTokens,
  DEFAULT_INGEST_LIMITS,
  type IngestLimits,
  type IngestOptions,
  parseTokens,
  resolveDedupeHorizon,
  resolveLimits,
  type ServiceToken,
} from "./options.ts";
export { buildIngest, type Ingest } from "./server.ts";
