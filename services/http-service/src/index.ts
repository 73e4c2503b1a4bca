// @creditflow/http-service: what creditflow's HTTP services share (the API, the ingest, the
// ClickHouse front): the process around a server, named bearer credentials, the request metrics.
// The package's only public door.
export { resolveNamedLimits } from "./limits.ts";
export { createHttpMetrics, type HttpMetrics } from "./metrics.ts";
export { intFromEnv, type SignalledProcess, stopOnSignals } from "./process.ts";
export { HTTP_REFUSALS, type RefusalBody } from "./refusals.ts";
export {
  checkNamedTokens,
  MAX_SECRET_LENGTH,
  MIN_SECRET_LENGTH,
  type NamedToken,
  type OptionErrorClass,
  parseNamedTokens,
} from "./tokens.ts";
