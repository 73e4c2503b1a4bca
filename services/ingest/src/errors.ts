// The ingest's error codes, a closed list: each with its HTTP status, whether the same request
// may succeed if sent again, and what it means. A 4xx body is always `{ error: { code, field,
// message } }`; `field` names the part of the request at fault (`events.3.inputTokens`,
// `authorization`, `` for the whole body). The refusals every HTTP service answers alike (bad
// JSON, no route, …) are HTTP_REFUSALS; start-up failures have a list of their own.
import { errorCodes, OPTION_ERROR_CODES, OptionError } from "@creditflow/engine";
import { HTTP_REFUSALS, type RefusalBody } from "@creditflow/http-service";

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
  batch_too_large: {
    status: 413,
    retryable: false,
    doc: "more events in one batch than `maxBatchEvents`",
  },
  kafka_unavailable: {
    status: 503,
    retryable: true,
    doc: "Kafka did not acknowledge; nothing is promised, retry",
  },
  ...HTTP_REFUSALS,
});
export type IngestErrorCode = keyof typeof INGEST_ERROR_CODES;

/** The JSON body of every refusal. */
export type ErrorBody = RefusalBody<IngestErrorCode>;

export function errorBody(code: IngestErrorCode, field: string, message: string): ErrorBody {
  return { error: { code, field, message } };
}

/** Start-up failures: not HTTP answers, so not in the list above. */
export const INGEST_OPTION_ERROR_CODES = OPTION_ERROR_CODES;
export type IngestOptionErrorCode = keyof typeof INGEST_OPTION_ERROR_CODES;

/** A start-up failure: an option out of its range (`field` names it). Not an HTTP answer. */
export class IngestOptionError extends OptionError {}
