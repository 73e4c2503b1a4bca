// Ledger out and dead letters out: the consumer's two Kafka writes, both through one idempotent
// producer with acks=all. A relay is acknowledged before its outbox entries are deleted and
// before any offset is committed, so an entry reaches the ledger topic at least once.

import type { TopicNames } from "@creditflow/contracts";
import type { AvroCodec, Producer } from "@creditflow/producer";
import type { DeadLetterReason, RawRecord } from "./classify.ts";
import { ConsumerError } from "./errors.ts";
import type { OutboxEntry } from "./store.ts";

/** Messages per produce request: keeps a request under the broker's 1 MiB default. */
const MAX_MESSAGES_PER_SEND = 2_000;

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
  private readonly producer: Producer;
  private readonly codec: AvroCodec;
  private readonly topics: TopicNames;

  constructor(producer: Producer, codec: AvroCodec, topics: TopicNames) {
    this.producer = producer;
    this.codec = codec;
    this.topics = topics;
  }

  /** Produces outbox entries to the ledger topic, keyed by user, in the given order. */
  async relayLedger(entries: OutboxEntry[]): Promise<void> {
    for (let i = 0; i < entries.length; i += MAX_MESSAGES_PER_SEND) {
      const messages = entries.slice(i, i + MAX_MESSAGES_PER_SEND).map((e) => ({
        key: e.userId,
        value: this.codec.encode("ledger", e.record),
      }));
      await this.send(this.topics.ledger, messages, "relay ledger entries");
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
      return { key: raw.key, value: raw.value, headers };
    });
    for (let i = 0; i < messages.length; i += MAX_MESSAGES_PER_SEND) {
      await this.send(
        this.topics.deadLetters,
        messages.slice(i, i + MAX_MESSAGES_PER_SEND),
        "send dead letters",
      );
    }
  }

  private async send(
    topic: string,
    messages: {
      key: string | Buffer | null;
      value: Buffer | null;
      headers?: Record<string, string>;
    }[],
    what: string,
  ): Promise<void> {
    try {
      await this.producer.send({ topic, acks: -1, messages });
    } catch (cause) {
      throw new ConsumerError("kafka_failed", `${what}: ${(cause as Error).message}`, { cause });
    }
  }
}
