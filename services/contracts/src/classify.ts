// From Kafka bytes to engine inputs: decode through the registry, re-validate what was decoded
// (a producer that skipped validation, a hand-written record), and name what is wrong with a
// record that cannot be applied so it can be dead-lettered. No I/O besides the decoder's registry
// (@creditflow/kafka's AvroCodec). Here, not in the consumer: the consumer and the rebuild
// read the same records and must turn them into the same inputs, and the rebuild (a reader) does
// not import the consumer (the writer).

import type { EngineInput, RateCard, UsageEvent } from "@creditflow/engine";
import { commandFromRecord } from "./mapping.ts";
import type { CreditCommandRecord, UsageEventRecord } from "./schemas.ts";
import { ID_PATTERN, validateUsage } from "./validate.ts";

export const DEAD_LETTER_REASONS = [
  "bad_frame",
  "unknown_schema",
  "undecodable",
  "missing_user",
  "key_mismatch",
  "unknown_feature",
  "unknown_model",
  "invalid_field",
  "engine_failed",
  /** Older than the duplicate horizon when Kafka accepted it (the engine's too_old). */
  "too_old",
] as const;
export type DeadLetterReason = (typeof DEAD_LETTER_REASONS)[number];

/** The id rule producers enforce (contracts' ID_PATTERN), checked again on hand-written commands. */
const ID = new RegExp(ID_PATTERN);

/** One Kafka record as read, before decoding. */
export interface RawRecord {
  topic: string;
  partition: number;
  /** Kafka offset as kafkajs gives it (decimal string). */
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, unknown>;
  /** When Kafka accepted the record, epoch ms as kafkajs gives it (decimal string). */
  timestamp?: string;
}

/** A record as the Kafka client hands it, before its topic and partition are attached. */
export type ReadRecord = Pick<RawRecord, "offset" | "key" | "value" | "headers" | "timestamp">;

/** The record read from `topic`[`partition`], its fields taken from what the client handed. */
export function rawRecordOf(topic: string, partition: number, m: ReadRecord): RawRecord {
  return {
    topic,
    partition,
    offset: m.offset,
    key: m.key,
    value: m.value,
    headers: m.headers,
    timestamp: m.timestamp,
  };
}

/** A record ready for the engine, with where it was read. */
export interface InputRecord {
  topic: string;
  partition: number;
  offset: bigint;
  input: EngineInput;
  /**
   * When Kafka accepted the record (its timestamp; the input topics append with LogAppendTime):
   * the clock of the duplicate horizon. Null when the record carries no usable timestamp.
   */
  acceptedAtMs: number | null;
  /** The record as read: dead-lettered as is if the engine fails on it. */
  raw: RawRecord;
}

export type Classified =
  | { ok: true; record: InputRecord }
  | { ok: false; raw: RawRecord; reason: DeadLetterReason; detail: string };

export type SourceKind = "usage" | "command";

/** A record's value decoded, or why it could not be. */
export type DecodedRecord =
  | { ok: true; value: unknown }
  | { ok: false; reason: "bad_frame" | "unknown_schema" | "undecodable"; detail: string };

/** What classifying needs of a codec (@creditflow/kafka's AvroCodec is one): decoding. */
export interface RecordDecoder {
  /** The value decoded without waiting; null when its schema id is not known yet. */
  decodeKnown(kind: SourceKind, bytes: Buffer | null): DecodedRecord | null;
  /** The value decoded, its writer schema fetched from the registry when needed. */
  decode(kind: SourceKind, bytes: Buffer | null): Promise<DecodedRecord>;
}

type Problem = { reason: DeadLetterReason; detail: string };

/**
 * The engine's usage event of a decoded record, validated as the producer library validates
 * usage; what is wrong with it otherwise.
 */
function usageEvent(r: UsageEventRecord, rateCard: RateCard): UsageEvent | Problem {
  if (r.userId === "") return { reason: "missing_user", detail: "userId is empty" };
  const checked = validateUsage(
    {
      eventId: r.eventId,
      userId: r.userId,
      taskId: r.taskId,
      feature: r.feature,
      taskKind: r.taskKind,
      model: r.model,
      inputTokens: r.inputTokens,
      outputTokens: r.outputTokens,
      cachedInputTokens: r.cachedInputTokens,
      occurredAt: r.occurredAt,
      // Not used by the engine, but stored in history: 1 to 64 characters, as producers check.
      service: r.service,
    },
    rateCard,
  );
  if (checked.ok) return checked.value;
  const detail = checked.errors.map((e) => `${e.field}: ${e.message}`).join("; ");
  const codes = new Set(checked.errors.map((e) => e.code));
  if (checked.errors.some((e) => e.field === "userId")) return { reason: "missing_user", detail };
  if (codes.has("unknown_feature")) return { reason: "unknown_feature", detail };
  if (codes.has("unknown_model")) return { reason: "unknown_model", detail };
  return { reason: "invalid_field", detail };
}

/** Decodes and validates a unit's records, in order; only unusual records wait on the codec. */
export async function classifyRecords(
  raws: RawRecord[],
  kind: SourceKind,
  codec: RecordDecoder,
  rateCard: RateCard,
): Promise<Classified[]> {
  const out: Classified[] = new Array(raws.length);
  const slow: Promise<void>[] = [];
  raws.forEach((raw, i) => {
    // The common case without a promise: a schema the codec already holds decodes at once;
    // only records of an unseen schema id wait on the registry.
    const decoded = codec.decodeKnown(kind, raw.value);
    if (decoded !== null) out[i] = classifyDecoded(raw, kind, decoded, rateCard);
    else
      slow.push(
        codec.decode(kind, raw.value).then((d) => {
          out[i] = classifyDecoded(raw, kind, d, rateCard);
        }),
      );
  });
  if (slow.length > 0) await Promise.all(slow);
  return out;
}

/** Decodes and validates one record of the usage or commands topic. */
export async function classifyRecord(
  raw: RawRecord,
  kind: SourceKind,
  codec: RecordDecoder,
  rateCard: RateCard,
): Promise<Classified> {
  return classifyDecoded(raw, kind, await codec.decode(kind, raw.value), rateCard);
}

function fail(raw: RawRecord, reason: DeadLetterReason, detail: string): Classified {
  return { ok: false, raw, reason, detail: detail.slice(0, 500) };
}

function classifyDecoded(
  raw: RawRecord,
  kind: SourceKind,
  decoded: DecodedRecord,
  rateCard: RateCard,
): Classified {
  if (!decoded.ok) return fail(raw, decoded.reason, decoded.detail);
  let input: EngineInput;
  if (kind === "usage") {
    const event = usageEvent(decoded.value as UsageEventRecord, rateCard);
    if ("reason" in event) return fail(raw, event.reason, event.detail);
    input = event;
  } else {
    const r = decoded.value as CreditCommandRecord;
    if (r.userId === "") return fail(raw, "missing_user", "userId is empty");
    // The ids as the producer library and the API refuse them: a member id outside the pattern
    // (spaces, 300 characters) would open a member no API route can name.
    if (!ID.test(r.userId)) {
      return fail(raw, "missing_user", "userId must be 1 to 128 characters of [A-Za-z0-9._:-]");
    }
    if (!ID.test(r.commandId)) {
      return fail(raw, "invalid_field", "commandId must be 1 to 128 characters of [A-Za-z0-9._:-]");
    }
    // Other command checks are the engine's: it refuses naming the field and remembers the id.
    input = commandFromRecord(r);
  }
  // One member's records must sit on one partition, in order: that is what the key promises.
  if (!keyIs(raw.key, input.userId)) {
    const key = raw.key?.toString("utf8") ?? null;
    return fail(
      raw,
      "key_mismatch",
      `record key ${JSON.stringify(key)} is not userId ${input.userId}`,
    );
  }
  return {
    ok: true,
    record: {
      topic: raw.topic,
      partition: raw.partition,
      offset: BigInt(raw.offset),
      input,
      acceptedAtMs: acceptedAtOf(raw),
      raw,
    },
  };
}

function acceptedAtOf(raw: RawRecord): number | null {
  if (raw.timestamp === undefined) return null;
  const ms = Number(raw.timestamp);
  return Number.isSafeInteger(ms) && ms >= 0 ? ms : null;
}

/** Whether the key's bytes are the id's UTF-8, without decoding the key (ids are mostly ASCII). */
function keyIs(key: Buffer | null, userId: string): boolean {
  if (key === null) return false;
  if (key.length !== userId.length) return key.toString("utf8") === userId;
  for (let i = 0; i < key.length; i++) {
    const c = userId.charCodeAt(i);
    if (c > 0x7f) return key.toString("utf8") === userId;
    if (key[i] !== c) return false;
  }
  return true;
}
