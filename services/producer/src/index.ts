// @creditflow/producer: what a feature service imports to send usage and credit commands to
// creditflow. The only public door of the package.
// The plumbing names below are @creditflow/kafka's, passed on until every importer takes them
// from there.
export {
  type Admin,
  AvroCodec,
  compressionOf,
  connectKafka,
  type DecodeResult,
  ensureTopics,
  idempotentProducer,
  type KafkaConnection,
  keyPartition,
  type OutgoingRecord,
  type Producer,
  partitionCount,
  type RecordKind,
  type RecordSender,
  recordSender,
  rejoinErrorOf,
  waitForLeaders,
} from "@creditflow/kafka";
export { PRODUCER_ERROR_CODES, ProducerError, type ProducerErrorCode } from "./errors.ts";
export { DEFAULT_LIMITS, type ProducerLimits, type ProducerOptions } from "./options.ts";
export { type Acknowledged, CreditProducer } from "./producer.ts";
