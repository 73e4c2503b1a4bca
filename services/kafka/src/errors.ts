// The one error class of the Kafka plumbing, with a closed list of codes: the infrastructure
// failures this package reports itself (the schema registry, topics that never got a leader, a
// topic without partitions). A client's own error (kafkajs, @platformatic/kafka) from a send or
// a fetch is passed on as the client threw it, so its retry hints and group errors stay readable.
import { CreditflowError, errorCodes } from "@creditflow/engine";

export const KAFKA_ERROR_CODES = errorCodes({
  registry_failed: {
    retryable: true,
    doc: "the schema registry refused a registration or a schema fetch, or did not answer",
  },
  topics_not_ready: {
    retryable: true,
    doc: "a partition of the topics had no leader within the wait (60 s); the last error is the cause",
  },
  no_partitions: {
    retryable: false,
    doc: "the topic's metadata lists no partitions",
  },
});

export class KafkaError extends CreditflowError.withCodes(KAFKA_ERROR_CODES) {}
