// @creditflow/producer: what a feature service imports to send usage and credit commands to
// creditflow, and the thin Kafka adapter and Avro codec the other services share. The only
// public door of the package.
export { AvroCodec, type DecodeResult, type RecordKind } from "./codec.ts";
export { PRODUCER_ERROR_CODES, ProducerError, type ProducerErrorCode } from "./errors.ts";
export {
  type Admin,
  compressionOf,
  connectKafka,
  ensureTopics,
  idempotentProducer,
  type KafkaConnection,
  keyPartition,
  type OutgoingRecord,
  type Producer,
  partitionCount,
  type RecordSender,
  recordSender,
  rejoinErrorOf,
  waitForLeaders,
} from "./kafka.ts";
export { DEFAULT_LIMITS, type ProducerLimits, type ProducerOptions } from "./options.ts";
export { type Acknowledged, CreditProducer } from "./producer.ts";
