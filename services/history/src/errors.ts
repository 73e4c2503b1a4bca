// The rebuild's error class, with a closed list of codes: limits out of range, and sources too
// slow or too large to replay. A rebuilt member that disagrees with the ledger is not an error:
// it is a Mismatch in the summary, and that member is not written.
import { CreditflowError, errorCodes } from "@creditflow/engine";

export const REBUILD_ERROR_CODES = errorCodes({
  invalid_limits: {
    retryable: false,
    doc: "a limit is not a whole number > 0; `field` names it",
  },
  read_timeout: {
    retryable: true,
    doc: "the source topics were not read up to their bounds within `limits.readTimeoutMs`",
  },
  too_many_records: {
    retryable: false,
    doc: "the source topics hold more records than `limits.maxRecords`; raise it",
  },
});

export class RebuildError extends CreditflowError.withCodes(REBUILD_ERROR_CODES) {}
