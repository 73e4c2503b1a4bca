// The one error class of the producer library, with a closed list of codes. Expected outcomes
// of a send are not errors; these are bad input (the caller's bug), an event older than the
// duplicate horizon (refused, never sent), a closed producer, and
// infrastructure failures (Kafka, the registry), each saying whether a retry may help.
import type { FieldError } from "@creditflow/contracts";

export const PRODUCER_ERROR_CODES = {
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
} as const;
export type ProducerErrorCode = keyof typeof PRODUCER_ERROR_CODES;

export class ProducerError extends Error {
  readonly code: ProducerErrorCode;
  readonly retryable: boolean;
  readonly fields: FieldError[];

  constructor(
    code: ProducerErrorCode,
    message: string,
    opts: { cause?: unknown; fields?: FieldError[] } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = "ProducerError";
    this.code = code;
    this.retryable = PRODUCER_ERROR_CODES[code].retryable;
    this.fields = opts.fields ?? [];
  }
}
