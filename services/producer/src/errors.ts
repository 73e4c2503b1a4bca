// The one error class of the producer library, with a closed list of codes. Expected outcomes
// of a send are not errors; these are bad input (the caller's bug), an event older than the
// duplicate horizon (refused, never sent), a closed producer, and
// infrastructure failures (Kafka, the registry), each saying whether a retry may help.
import type { FieldError } from "@creditflow/contracts";
import { CreditflowError, errorCodes } from "@creditflow/engine";

export const PRODUCER_ERROR_CODES = errorCodes({
  invalid_input: {
    retryable: false,
    doc: "the input failed validation; `fields` names each field",
  },
  too_old: {
    retryable: false,
    doc:
      "the event is older than the duplicate horizon (`dedupeHorizonMs`) by the producer's " +
      "clock; `fields` names its occurredAt. It can no longer be told from a duplicate: never sent",
  },
  invalid_options: { retryable: false, doc: "an option is out of its range; `fields` names it" },
  closed: { retryable: false, doc: "the producer was closed before the record was sent" },
  kafka_failed: { retryable: true, doc: "Kafka did not acknowledge the batch (cause kept)" },
  registry_failed: { retryable: true, doc: "the schema registry refused or did not answer" },
});
export type ProducerErrorCode = keyof typeof PRODUCER_ERROR_CODES;

/** `field` is the first of `fields`, which names every field at fault. */
export class ProducerError extends CreditflowError<ProducerErrorCode> {
  readonly fields: FieldError[];

  constructor(
    code: ProducerErrorCode,
    message: string,
    opts: { cause?: unknown; fields?: FieldError[] } = {},
  ) {
    super(PRODUCER_ERROR_CODES, code, message, {
      field: opts.fields?.[0]?.field,
      cause: opts.cause,
    });
    this.fields = opts.fields ?? [];
  }
}
