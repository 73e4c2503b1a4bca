// The producer library a feature service imports: validated, Avro-encoded, keyed by user,
// idempotent (acks=all), batched with a linger and gzip, and bounded: when Kafka is slow,
// recordUsage waits for room instead of growing memory without end.
import {
  ID_PATTERN,
  recordFromCommand,
  type TopicNames,
  topicNames,
  type UsageInput,
  usageRecordFromEvent,
  validateUsage,
} from "@creditflow/contracts";
import type { CreditCommand, RateCard } from "@creditflow/engine";
import { AvroCodec } from "./codec.ts";
import { ProducerError } from "./errors.ts";
import { compressionOf, connectKafka, idempotentProducer, type Producer } from "./kafka.ts";
import {
  checkOptions,
  type ProducerLimits,
  type ProducerOptions,
  resolveLimits,
} from "./options.ts";

/** What Kafka acknowledged for one record. */
export interface Acknowledged {
  id: string;
  topic: string;
}

interface Pending {
  topic: string;
  key: string;
  value: Buffer;
  id: string;
  resolve: (ack: Acknowledged) => void;
  reject: (error: ProducerError) => void;
}

const idPattern = new RegExp(ID_PATTERN);

export class CreditProducer {
  readonly topics: TopicNames;
  readonly limits: ProducerLimits;
  private readonly service: string;
  private readonly rateCard: RateCard;
  private readonly codec: AvroCodec;
  private readonly producer: Producer;
  private readonly compression: number;
  private queue: Pending[] = [];
  /** Records queued or in flight: the bound of back-pressure. */
  private pending = 0;
  private inFlight = 0;
  private lingerTimer: NodeJS.Timeout | null = null;
  private roomWaiters: Array<() => void> = [];
  private idleWaiters: Array<() => void> = [];
  private closed = false;
  /** Counters for whoever watches the producer (benchmarks, metrics). */
  readonly stats = { sent: 0, batches: 0, failed: 0, waitedForRoom: 0 };

  private constructor(options: ProducerOptions, codec: AvroCodec, producer: Producer) {
    this.topics = options.topics ?? topicNames();
    this.limits = resolveLimits(options.limits);
    this.service = options.service;
    this.rateCard = options.rateCard;
    this.codec = codec;
    this.producer = producer;
    this.compression = compressionOf[options.compression ?? "gzip"];
  }

  /** Connect to Kafka and register the schemas; options are checked before anything else. */
  static async create(options: ProducerOptions): Promise<CreditProducer> {
    checkOptions(options);
    resolveLimits(options.limits);
    const topics = options.topics ?? topicNames();
    const codec = new AvroCodec(options.schemaRegistryUrl);
    await codec.register(topics, ["usage", "command"]);
    const conn = connectKafka(
      options.brokers,
      options.clientId ?? `creditflow-producer-${options.service}`,
    );
    const producer = idempotentProducer(conn);
    try {
      await producer.connect();
    } catch (cause) {
      throw new ProducerError("kafka_failed", "could not connect to Kafka", { cause });
    }
    return new CreditProducer({ ...options, topics }, codec, producer);
  }

  /**
   * Record one usage event. Throws ProducerError(invalid_input) naming each bad field before
   * anything is sent; resolves once Kafka acknowledged the record.
   */
  async recordUsage(input: UsageInput): Promise<Acknowledged> {
    const checked = validateUsage(input, this.rateCard);
    if (!checked.ok) {
      const first = checked.errors[0]!;
      throw new ProducerError("invalid_input", first.message, { fields: checked.errors });
    }
    const record = usageRecordFromEvent(checked.value, input.service ?? this.service);
    return this.enqueue(
      this.topics.usage,
      record.userId,
      record.eventId,
      this.codec.encode("usage", record),
    );
  }

  /**
   * Record a batch: every event is validated first and none is sent if one is bad (the error
   * names `events.N.field`); then all are sent and the promise resolves when every one is
   * acknowledged.
   */
  async recordUsageBatch(inputs: UsageInput[]): Promise<Acknowledged[]> {
    const records = inputs.map((input, i) => {
      const checked = validateUsage(input, this.rateCard, `events.${i}`);
      return { checked, service: input?.service ?? this.service };
    });
    const errors = records.flatMap((r) => (r.checked.ok ? [] : r.checked.errors));
    if (errors.length > 0) {
      throw new ProducerError("invalid_input", errors[0]!.message, { fields: errors });
    }
    return Promise.all(
      records.map(({ checked, service }) => {
        if (!checked.ok) throw new Error("assertion: validated above");
        const record = usageRecordFromEvent(checked.value, service);
        return this.enqueue(
          this.topics.usage,
          record.userId,
          record.eventId,
          this.codec.encode("usage", record),
        );
      }),
    );
  }

  /**
   * Send a credit command (billing, admin); `issuedBy` is recorded for the audit trail and
   * `campaign` (bonus grants) for analysts.
   */
  async sendCommand(
    command: CreditCommand,
    issuedBy: string,
    campaign: string | null = null,
  ): Promise<Acknowledged> {
    for (const field of ["id", "userId"] as const) {
      if (typeof command[field] !== "string" || !idPattern.test(command[field])) {
        const message = `${field} must be 1 to 128 characters of [A-Za-z0-9._:-]`;
        throw new ProducerError("invalid_input", message, {
          fields: [{ field, code: "format", message }],
        });
      }
    }
    let value: Buffer;
    try {
      value = this.codec.encode("command", recordFromCommand(command, issuedBy, campaign));
    } catch (cause) {
      const message = `command does not fit the credit-command schema: ${(cause as Error).message}`;
      throw new ProducerError("invalid_input", message, {
        cause,
        fields: [{ field: "", code: "type", message }],
      });
    }
    return this.enqueue(this.topics.commands, command.userId, command.id, value);
  }

  /** Resolves when every record accepted so far is acknowledged (or failed). */
  async flush(): Promise<void> {
    this.kick();
    if (this.pending === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** Flush, then disconnect. Records offered after close are refused with code `closed`. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    await this.producer.disconnect();
  }

  private async enqueue(
    topic: string,
    key: string,
    id: string,
    value: Buffer,
  ): Promise<Acknowledged> {
    if (this.closed) throw new ProducerError("closed", "the producer is closed");
    while (this.pending >= this.limits.maxPendingRecords) {
      this.stats.waitedForRoom++;
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
      if (this.closed) throw new ProducerError("closed", "the producer is closed");
    }
    this.pending++;
    const done = new Promise<Acknowledged>((resolve, reject) => {
      this.queue.push({ topic, key, value, id, resolve, reject });
    });
    if (this.queue.length >= this.limits.maxBatchRecords) this.kick();
    else this.lingerTimer ??= setTimeout(() => this.kick(), this.limits.lingerMs);
    return done;
  }

  /** Send the next batch if a slot is free; called on linger, on a full batch and after a send. */
  private kick(): void {
    if (this.lingerTimer) {
      clearTimeout(this.lingerTimer);
      this.lingerTimer = null;
    }
    while (this.queue.length > 0 && this.inFlight < this.limits.maxInFlightBatches) {
      const batch = this.queue.splice(0, this.limits.maxBatchRecords);
      this.inFlight++;
      void this.send(batch);
    }
  }

  private async send(batch: Pending[]): Promise<void> {
    const byTopic = new Map<string, Array<{ key: string; value: Buffer }>>();
    for (const p of batch) {
      const messages = byTopic.get(p.topic) ?? [];
      if (messages.length === 0) byTopic.set(p.topic, messages);
      messages.push({ key: p.key, value: p.value });
    }
    try {
      await this.producer.sendBatch({
        acks: -1,
        timeout: this.limits.requestTimeoutMs,
        compression: this.compression,
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      });
      this.stats.sent += batch.length;
      this.stats.batches++;
      for (const p of batch) p.resolve({ id: p.id, topic: p.topic });
    } catch (cause) {
      this.stats.failed += batch.length;
      const error = new ProducerError(
        "kafka_failed",
        `Kafka did not acknowledge ${batch.length} records`,
        {
          cause,
        },
      );
      for (const p of batch) p.reject(error);
    } finally {
      this.inFlight--;
      this.pending -= batch.length;
      for (const wake of this.roomWaiters.splice(0, batch.length)) wake();
      if (this.pending === 0) for (const wake of this.idleWaiters.splice(0)) wake();
      if (this.queue.length >= this.limits.maxBatchRecords) this.kick();
      else if (this.queue.length > 0)
        this.lingerTimer ??= setTimeout(() => this.kick(), this.limits.lingerMs);
    }
  }
}
