// The one error class of the deduction consumer, with a closed list of codes. Bad records are not
// errors (they are dead-lettered); these are bad options (fail at start-up) and infrastructure
// failures, each saying whether a retry of the batch may help. Redis failures and stored data that
// does not decode are the member store's (MemberStoreError of @creditflow/member-store).
import { CreditflowError, errorCodes } from "@creditflow/engine";

export const CONSUMER_ERROR_CODES = errorCodes({
  invalid_options: {
    retryable: false,
    doc: "an option or limit is out of range; the field is named",
  },
  invalid_config: { retryable: false, doc: "the rate card or plans could not be read or parsed" },
  kafka_failed: { retryable: true, doc: "Kafka did not acknowledge a produce or a commit" },
  cas_exhausted: {
    retryable: true,
    doc: "a member's version changed under us more than maxCasRetries times in one batch",
  },
});
export type ConsumerErrorCode = keyof typeof CONSUMER_ERROR_CODES;

export class ConsumerError extends CreditflowError.withCodes(CONSUMER_ERROR_CODES) {}

/** Programmer errors: kept on in production. */
export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}
