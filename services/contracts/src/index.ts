// @creditflow/contracts: what producers and the consumer agree on (topics, subjects, the
// Confluent wire format, the Avro schemas and their mapping to the engine, input
// validation, a Kafka record classified into an engine input or a dead-letter reason). The only
// public door of the package.
export {
  type Classified,
  classifyRecord,
  classifyRecords,
  DEAD_LETTER_REASONS,
  type DeadLetterReason,
  type DecodedRecord,
  type InputRecord,
  type RawRecord,
  type ReadRecord,
  type RecordDecoder,
  rawRecordOf,
  type SourceKind,
} from "./classify.ts";
export { formatHorizon, isOlderThanHorizon, tooOldError } from "./horizon.ts";
export {
  commandFromRecord,
  ledgerRecordFromEntry,
  recordFromCommand,
  usageEventFromRecord,
  usageRecordFromEvent,
} from "./mapping.ts";
export {
  avroOptions,
  type CommandBody,
  type CreditCommandRecord,
  creditCommandSchema,
  type LedgerEntryRecord,
  ledgerEntrySchema,
  type UsageEventRecord,
  usageEventSchema,
} from "./schemas.ts";
export { DEFAULT_PARTITIONS, type TopicNames, topicNames, valueSubject } from "./topics.ts";
export {
  type FieldError,
  ID_PATTERN,
  type UsageInput,
  UsageInputSchema,
  type Validated,
  validateUsage,
} from "./validate.ts";
export { frameWire, MAGIC_BYTE, unframeWire, WIRE_HEADER_BYTES, type WireFrame } from "./wire.ts";
