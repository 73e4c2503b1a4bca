// @creditflow/kafka: the house's Kafka plumbing, for creditflow's own services and tests:
// connections, topics, the partitioner, group rejoin, the ledger and dead-letter senders, reading
// topics up to given offsets, and the Avro codec. A feature team imports @creditflow/producer
// instead. The only public door.
import type { KafkaError } from "./errors.ts";

export { AvroCodec, type DecodeResult, type RecordKind } from "./codec.ts";
export { KAFKA_ERROR_CODES, KafkaError } from "./errors.ts";
/** A code of KAFKA_ERROR_CODES. */
export type KafkaErrorCode = KafkaError["code"];
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
export { type KafkaMessage, type ReadUpToOptions, readUpTo } from "./read-up-to.ts";
