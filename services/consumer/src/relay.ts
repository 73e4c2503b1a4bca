// Ledger out and dead letters out: the consumer's two Kafka writes, both idempotent with
// acks=all. The ledger goes through @creditflow/kafka's RecordSender (@platformatic/kafka:
// a fraction of kafkajs's CPU per record), the rare dead letters, which carry headers, through a
// kafkajs producer. A relay is acknowledged before its outbox entries are deleted and before any
// offset is committed, so an entry reaches the ledger topic at least once.

import type { DeadLetterReason, RawRecord, TopicNames } from "@creditflow/contracts";
import type { Producer, RecordSender } from "@creditflow/kafka";
import { type OutboxField, outboxValues } from "@creditflow/member-store";
import { ConsumerError } from "./errors.ts";

/**
 * Messages per dead-letter send: small enough for kafkajs, whose grouping of a send's messages by
 * partition copies each partition's list once per message (quadratic in the messages per
 * partition). The ledger's sender has no such cost: its sends are cut by bytes alone.
 */
const MAX_MESSAGES_PER_SEND = 500;
const MAX_LEDGER_MESSAGES_PER_SEND = 20_000;
/**
 * Bytes per send (keys, values, headers): every partition's batch stays under the broker's
 * default `message.max.bytes` (1 MiB), whatever the partitioning.
 */
const MAX_SEND_BYTES = 900_000;

type OutMessage = {
  key: string | Buffer | null;
  value: Buffer | null;
  headers?: Record<string, string>;
};

function messageBytes(m: OutMessage): number {
  let n = 64 + (m.key?.length ?? 0) + (m.value?.length ?? 0);
  for (const name in m.headers) n += name.length + Buffer.byteLength(m.headers[name]!);
  return n;
}

/** Consecutive runs of messages, each at most `maxMessages` and MAX_SEND_BYTES. */
export function sendChunks<T extends OutMessage>(
  messages: T[],
  maxMessages = MAX_MESSAGES_PER_SEND,
): T[][] {
  const out: T[][] = [];
  let chunk: T[] = [];
  let bytes = 0;
  for (const m of messages) {
    const size = messageBytes(m);
    if (chunk.length > 0 && (chunk.length >= maxMessages || bytes + size > MAX_SEND_BYTES)) {
      out.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(m);
    bytes += size;
  }
  if (chunk.length > 0) out.push(chunk);
  return out;
}

/**
 * A dead letter keeps the record's bytes, cut when the letter would not fit in one send (its
 * headers added to a record that was already close to the broker's limit); `cf-truncated` then
 * holds the original length. The whole record stays in its source topic, at the offset the
 * letter names.
 */
export function fitDeadLetter(m: OutMessage & { headers: Record<string, string> }): OutMessage {
  const over = messageBytes(m) - MAX_SEND_BYTES;
  if (over <= 0 || m.value === null) return m;
  const keep = Math.max(0, m.value.length - over - 1_024);
  return {
    key: m.key,
    value: m.value.subarray(0, keep),
    headers: { ...m.headers, "cf-truncated": String(m.value.length) },
  };
}

export interface DeadLetter {
  raw: RawRecord;
  reason: DeadLetterReason;
  detail: string;
}

function headerText(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  return Buffer.isBuffer(value) ? value.toString("utf8") : String(value);
}

export class KafkaOut {
  private readonly ledger: RecordSender;
  private readonly producer: Producer;
  private readonly topics: TopicNames;

  constructor(ledger: RecordSender, producer: Producer, topics: TopicNames) {
    this.ledger = ledger;
    this.producer = producer;
    this.topics = topics;
  }

  /**
   * Produces the fields' entries to the ledger topic, keyed by user, in the given order: one send
   * in flight at a time, each acknowledged (acks=all) before the next.
   */
  async relayLedger(fields: OutboxField[]): Promise<void> {
    const topic = this.topics.ledger;
    const records: { topic: string; key: string; value: Buffer }[] = [];
    for (const f of fields) {
      for (const value of outboxValues(f)) records.push({ topic, key: f.userId, value });
    }
    for (const chunk of sendChunks(records, MAX_LEDGER_MESSAGES_PER_SEND)) {
      try {
        await this.ledger.send(chunk);
      } catch (cause) {
        throw new ConsumerError(
          "kafka_failed",
          `relay ledger entries: ${(cause as Error).message}`,
          { cause },
        );
      }
    }
  }

  /** Produces each bad record's original bytes with why and where it came from in headers. */
  async sendDeadLetters(letters: DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    const messages = letters.map(({ raw, reason, detail }) => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(raw.headers ?? {})) {
        const text = headerText(value);
        if (text !== undefined && !name.startsWith("cf-")) headers[name] = text;
      }
      headers["cf-reason"] = reason;
      headers["cf-detail"] = detail;
      headers["cf-source-topic"] = raw.topic;
      headers["cf-source-partition"] = String(raw.partition);
      headers["cf-source-offset"] = raw.offset;
      return fitDeadLetter({ key: raw.key, value: raw.value, headers });
    });
    await this.send(this.topics.deadLetters, messages, "send dead letters");
  }

  /** Sends in order, in runs of sendChunks, each acknowledged (acks=all) before the next. */
  private async send(topic: string, messages: OutMessage[], what: string): Promise<void> {
    for (const chunk of sendChunks(messages)) await this.sendOne(topic, chunk, what);
  }

  private async sendOne(topic: string, messages: OutMessage[], what: string): Promise<void> {
    try {
      await this.producer.send({ topic, acks: -1, messages });
    } catch (cause) {
      throw new ConsumerError("kafka_failed", `${what}: ${(cause as Error).message}`, { cause });
    }
  }
}
