// @creditflow/api: the balance API, admin API and balance web page. The package's only public door.
export type { Caller, CallerKind } from "./auth.ts";
export {
  API_ERROR_CODES,
  API_OPTION_ERROR_CODES,
  ApiError,
  type ApiErrorCode,
  ApiOptionError,
  type ApiOptionErrorCode,
  type ErrorBody,
} from "./errors.ts";
export { historyIsBehind } from "./history.ts";
export {
  type ApiLimits,
  type ApiOptions,
  DEFAULT_API_LIMITS,
  type NamedToken,
  parseTokens,
  resolveLimits,
} from "./options.ts";
export type { AdmissionAnswer, Balance, Transactions } from "./schemas.ts";
export { type Api, buildApi } from "./server.ts";
export { formatCredits } from "./views.ts";
