// The refusals every creditflow HTTP service answers alike: entries of a service's closed list of
// error codes (`errorCodes({ …its own, ...HTTP_REFUSALS })`), each with its HTTP status, whether
// the same request may succeed if sent again, and what it means.
import { errorCodes } from "@creditflow/engine";

export const HTTP_REFUSALS = errorCodes({
  invalid_json: { status: 400, retryable: false, doc: "the body is not well-formed JSON" },
  not_found: { status: 404, retryable: false, doc: "no such route" },
  body_too_large: {
    status: 413,
    retryable: false,
    doc: "a body longer than the limit (`maxBodyBytes`)",
  },
  unsupported_media_type: {
    status: 415,
    retryable: false,
    doc: "the body is not `application/json`",
  },
  internal: { status: 500, retryable: false, doc: "a bug; the log has the details" },
});

/** The JSON body of every refusal of a service whose codes are `Code`. */
export interface RefusalBody<Code extends string> {
  error: { code: Code; field: string; message: string };
}
