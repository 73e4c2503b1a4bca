// The API's error codes, a closed list: each with its HTTP status and what it means. Every
// refusal's body is `{ error: { code, field, message } }`; `field` names the part of the request
// at fault (`amountMicros`, `userId`, `authorization`, `` for the whole request).

export const API_ERROR_CODES = {
  unauthorized: { status: 401, doc: "no credential, or one that is not configured" },
  invalid_token: { status: 401, doc: "a member token that is forged, malformed or lacks a claim" },
  token_expired: { status: 401, doc: "a member token past its `exp`" },
  forbidden: {
    status: 403,
    doc: "the credential is of the wrong kind, or a member asks for another member's data",
  },
  invalid_request: { status: 400, doc: "the request failed validation; `field` names the field" },
  invalid_json: { status: 400, doc: "the body is not well-formed JSON" },
  member_not_found: { status: 404, doc: "no credit state for this user (the consumer has none)" },
  not_found: { status: 404, doc: "no such route" },
  conflict: {
    status: 409,
    doc: "an admin `commandId` reused with a different body; nothing is sent",
  },
  body_too_large: { status: 413, doc: "a body longer than the limit" },
  unsupported_media_type: { status: 415, doc: "the body is not `application/json`" },
  rate_limited: { status: 429, doc: "too many requests from this caller; retry after the header" },
  internal: { status: 500, doc: "a bug; the log has the details" },
  kafka_unavailable: {
    status: 503,
    doc: "Kafka did not acknowledge the command; nothing is promised, retry with the same id",
  },
  redis_unavailable: { status: 503, doc: "the balance store did not answer; retry" },
} as const;
export type ApiErrorCode = keyof typeof API_ERROR_CODES;

/** The JSON body of every refusal. */
export interface ErrorBody {
  error: { code: ApiErrorCode; field: string; message: string };
}

/** An expected refusal raised inside a handler or hook; the error handler turns it into its body. */
export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly field: string;
  readonly statusCode: number;
  /** Extra response headers (`retry-after`, `www-authenticate`). */
  readonly headers: Record<string, string>;

  constructor(
    code: ApiErrorCode,
    field: string,
    message: string,
    opts: { headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = "ApiError";
    this.code = code;
    this.field = field;
    this.statusCode = API_ERROR_CODES[code].status;
    this.headers = opts.headers ?? {};
  }

  body(): ErrorBody {
    return { error: { code: this.code, field: this.field, message: this.message } };
  }
}

/** A start-up failure: an option out of its range (`field` names it). Not an HTTP answer. */
export class ApiOptionError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = "ApiOptionError";
    this.field = field;
  }
}
