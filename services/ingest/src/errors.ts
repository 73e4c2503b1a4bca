// The ingest's error codes, a closed list: each with its HTTP status, whether the same request
// may succeed if sent again, and what it means. A 4xx body is always `{ error: { code, field,
// message } }`; `field` names the part of the request at fault (`events.3.inputTokens`,
// `authorization`, `` for the whole body). Start-up failures have a list of their own.
import { CreditflowError, errorCodes } from "@creditflow/engine";

export const INGEST_ERROR_CODES = errorCodes({
  unauthorized: {
    status: 401,
    retryable: false,
    doc: "no service token, or one that is not configured",
  },
  invalid_input: {
    status: 400,
    retryable: false,
    doc: "the body failed validation; `field` names the first bad field",
  },
  too_old: {
    status: 400,
    retryable: false,
    doc:
      "an event's occurredAt is older than the duplicate horizon (`dedupeHorizonMs`); `field` " +
      "names it. It can no longer be told from a duplicate: never send it again",
  },
  invalid_json: { status: 400, retryable: false, doc: "the body is not well-formed JSON" },
  batch_too_large: {
    status: 413,
    retryable: false,
    doc: "more events in one batch than `maxBatchEvents`",
  },
  body_too_large: { status: 413, retryable: false, doc: "a body longer than `maxBodyBytes`" },
  unsupported_media_type: {
    status: 415,
    retryable: false,
    doc: "the body is not `application/json`",
  },
  not_found: { status: 404, retryable: false, doc: "no such route" },
  kafka_unavailable: {
    status: 503,
    retryable: true,
    doc: "Kafka did not acknowledge; nothing is promised, retry",
  },
  internal: { status: 500, retryable: false, doc: "a bug; the log has the details" },
});
export type IngestErrorCode = keyof typeof INGEST_ERROR_CODES;

/** Start-up failures: not HTTP answers, so not in the list above. */
export const INGEST_OPTION_ERROR_CODES = errorCodes({
  invalid_options: {
    retryable: false,
    doc: "an option (or its environment variable) is out of its range; `field` names it",
  },
});
export type IngestOptionErrorCode = keyof typeof INGEST_OPTION_ERROR_CODES;

/** The JSON body of every refusal. */
export interface ErrorBody {
  error: { code: IngestErrorCode; field: string; message: string };
}

export function errorBody(code: IngestErrorCode, field: string, message: string): ErrorBody {
  return { error: { code, field, message } };
}

/** A start-up failure: an option out of its range (`field` names it). Not an HTTP answer. */
export class IngestOptionError extends CreditflowError<IngestOptionErrorCode> {
  declare readonly field: string;
  constructor(field: string, message: string) {
    super(INGEST_OPTION_ERROR_CODES, "invalid_options", `${field}: ${message}`, { field });
  }
}
