// The API's error codes, a closed list: each with its HTTP status, whether the same request may
// succeed if sent again, and what it means. Every refusal's body is `{ error: { code, field,
// message } }`; `field` names the part of the request at fault (`amountMicros`, `userId`,
// `authorization`, `` for the whole request). The refusals every HTTP service answers alike (bad
// JSON, no route, …) are HTTP_REFUSALS.
import { CreditflowError, errorCodes, OPTION_ERROR_CODES, OptionError } from "@creditflow/engine";
import { HTTP_REFUSALS, type RefusalBody } from "@creditflow/http-service";

export const API_ERROR_CODES = errorCodes({
  unauthorized: {
    status: 401,
    retryable: false,
    doc: "no credential, or one that is not configured",
  },
  invalid_token: {
    status: 401,
    retryable: false,
    doc: "a member token that is forged, malformed or lacks a claim",
  },
  token_expired: { status: 401, retryable: false, doc: "a member token past its `exp`" },
  forbidden: {
    status: 403,
    retryable: false,
    doc: "the credential is of the wrong kind, or a member asks for another member's data",
  },
  invalid_request: {
    status: 400,
    retryable: false,
    doc: "the request failed validation; `field` names the field",
  },
  member_not_found: {
    status: 404,
    retryable: false,
    doc: "no credit state for this user (the consumer has none)",
  },
  conflict: {
    status: 409,
    retryable: false,
    doc: "an admin `commandId` reused with a different body; nothing is sent",
  },
  rate_limited: {
    status: 429,
    retryable: true,
    doc: "too many requests from this caller; retry after the header",
  },
  kafka_unavailable: {
    status: 503,
    retryable: true,
    doc: "Kafka did not acknowledge the command; nothing is promised, retry with the same id",
  },
  redis_unavailable: {
    status: 503,
    retryable: true,
    doc: "the balance store did not answer; retry",
  },
  ...HTTP_REFUSALS,
});
export type ApiErrorCode = keyof typeof API_ERROR_CODES;

/** An expected refusal raised inside a handler or hook; the error handler turns it into its body. */
export class ApiError extends CreditflowError<ApiErrorCode> {
  /** Always set: `` for the whole request. */
  declare readonly field: string;
  readonly statusCode: number;
  /** Extra response headers (`retry-after`, `www-authenticate`). */
  readonly headers: Record<string, string>;

  constructor(
    code: ApiErrorCode,
    field: string,
    message: string,
    opts: { headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(API_ERROR_CODES, code, message, { field, cause: opts.cause });
    this.statusCode = API_ERROR_CODES[code].status;
    this.headers = opts.headers ?? {};
  }

  body(): ErrorBody {
    return { error: { code: this.code, field: this.field, message: this.message } };
  }
}

/** The JSON body of every refusal. */
export type ErrorBody = RefusalBody<ApiErrorCode>;

/** Start-up failures: not HTTP answers, so not in the list above. */
export const API_OPTION_ERROR_CODES = OPTION_ERROR_CODES;
export type ApiOptionErrorCode = keyof typeof API_OPTION_ERROR_CODES;

/** A start-up failure: an option out of its range (`field` names it). Not an HTTP answer. */
export class ApiOptionError extends OptionError {}
