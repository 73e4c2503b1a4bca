// The producer library a feature service imports: validated, Avro-encoded, keyed by user,
// idempotent (acks=all), batched with a linger and gzip, and bounded: when Kafka is slow,
// recordUsage waits for room instead of growing memory without end. Batches go to Kafka
// through @creditflow/kafka's RecordSender; the hot path costs one promise per event.
import {
  ID_PATTERN,
  recordFromCommand,
  type TopicNames,
  topicNames,
  type UsageInput,
} from "@creditflow/contracts";
import { type CreditCommand, DEFAULT_DEDUPE_HORIZON_MS } from "@creditflow/engine";
import { AvroCodec, type OutgoingRecord, type RecordSender, recordSender } from "@creditflow/kafka";
import { ProducerError } from "./errors.ts";
import {
  checkOptions,
  type ProducerLimits,
  type ProducerOptions,
  resolveLimits,
} from "./options.ts";
import {
  type UsageRules,
  usageInputError,
  usageRecordOf,
  usageRecordsOf,
} from "./usage-records.ts";

/** What Kafka acknowledged for one record. */
export interface Acknowledged {
  id: string;
  topic: string;
}

/**
 * Records sent in one request, in call order, and the one promise every caller's promise of
 * the batch hangs on: per record, the library keeps the record and that caller's promise.
 */
interface Batch {
  records: OutgoingRecord[];
  acknowledged: Promise<void>;
  resolve: () => void;
  reject: (error: ProducerError) => void;
}

function newBatch(): Batch {
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  return { records: [], acknowledged: promise, resolve, reject };
}

const idPattern = new RegExp(ID_PATTERN);

export class CreditProducer {
  readonly topics: TopicNames;
  readonly limits: ProducerLimits;
  /** Events older than this by the producer's clock are refused `too_old`. */
  readonly dedupeHorizonMs: number;
  private readonly rules: UsageRules;
  private readonly codec: AvroCodec;
  private readonly sender: RecordSender;
  /** The batch taking new records; sent when full, or after lingerMs when a slot is free. */
  private filling: Batch | null = null;
  /** Full batches in call order, waiting for a free slot. */
  private ready: Batch[] = [];
  /** Records accepted and not yet acknowledged (or failed): the bound of back-pressure. */
  private pending = 0;
  private inFlight = 0;
  private lingerTimer: NodeJS.Timeout | null = null;
  private idleWaiters: Array<() => void> = [];
  private closed = false;
  /** Counters for whoever watches the producer (benchmarks, metrics). */
  readonly stats = { sent: 0, batches: 0, failed: 0, waitedForRoom: 0 };

  private constructor(options: ProducerOptions, codec: AvroCodec, sender: RecordSender) {
    this.topics = options.topics ?? topicNames();
    this.limits = resolveLimits(options.limits);
    this.dedupeHorizonMs = options.dedupeHorizonMs ?? DEFAULT_DEDUPE_HORIZON_MS;
    this.rules = {
      rateCard: options.rateCard,
      service: options.service,
      dedupeHorizonMs: this.dedupeHorizonMs,
    };
    this.codec = codec;
    this.sender = sender;
  }

  /** Connect to Kafka and register the schemas; options are checked before anything else. */
  static async create(options: ProducerOptions): Promise<CreditProducer> {
    checkOptions(options);
    const limits = resolveLimits(options.limits);
    const topics = options.topics ?? topicNames();
    const codec = new AvroCodec(options.schemaRegistryUrl);
    try {
      await codec.register(topics, ["usage", "command"]);
    } catch (cause) {
      throw new ProducerError("registry_failed", "could not register the schemas", { cause });
    }
    let sender: RecordSender;
    try {
      sender = await recordSender(
        options.brokers,
        options.clientId ?? `creditflow-producer-${options.service}`,
        { compression: options.compression ?? "gzip", requestTimeoutMs: limits.requestTimeoutMs },
      );
    } catch (cause) {
      throw new ProducerError("kafka_failed", "could not connect to Kafka", { cause });
    }
    return new CreditProducer({ ...options, topics }, codec, sender);
  }

  /**
   * Record one usage event. Rejects before anything is sent with ProducerError(invalid_input)
   * naming each bad field, or ProducerError(too_old) when its occurredAt is older than the
   * duplicate horizon by this process's clock; resolves once Kafka acknowledged the record.
   */
  recordUsage(input: UsageInput): Promise<Acknowledged> {
    // Not async: one promise per event (the one enqueue returns) is all the hot path pays for.
    try {
      const checked = usageRecordOf(input, this.rules, Date.now());
      if (!checked.ok) throw usageInputError(checked.errors);
      const record = checked.record;
      return this.enqueue(
        this.topics.usage,
        record.userId,
        record.eventId,
        this.codec.encode("usage", record),
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Record a batch: every event is checked first (validation, then the duplicate horizon) and
   * none is sent if one is refused (the error names `events.N.field`; its code is the first
   * refusal's); then all are sent and the promise resolves when every one is acknowledged.
   */
  async recordUsageBatch(inputs: UsageInput[]): Promise<Acknowledged[]> {
    const records = usageRecordsOf(inputs, this.rules, Date.now());
    return Promise.all(
      records.map((record) =>
        this.enqueue(
          this.topics.usage,
          record.userId,
          record.eventId,
          this.codec.encode("usage", record),
        ),
      ),
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
    if (this.filling !== null) this.seal();
    if (this.pending === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** Flush, then disconnect. Records offered after close are refused with code `closed`. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    await this.sender.close();
  }

  /**
   * Accept one encoded record into the filling batch. Over maxPendingRecords unacknowledged
   * records, the record waits in a later batch (call order is kept) until earlier ones are
   * acknowledged; its promise settles when Kafka answered for its batch.
   */
  private enqueue(topic: string, key: string, id: string, value: Buffer): Promise<Acknowledged> {
    if (this.closed) return Promise.reject(new ProducerError("closed", "the producer is closed"));
    if (this.pending >= this.limits.maxPendingRecords) this.stats.waitedForRoom++;
    this.pending++;
    this.filling ??= newBatch();
    const batch = this.filling;
    batch.records.push({ topic, key, value });
    if (batch.records.length >= this.limits.maxBatchRecords) this.seal();
    else this.lingerTimer ??= setTimeout(this.onLinger, this.limits.lingerMs);
    return batch.acknowledged.then(() => ({ id, topic }));
  }

  /** Close the filling batch: it joins the ready ones and goes out when a slot is free. */
  private seal(): void {
    if (this.lingerTimer !== null) {
      clearTimeout(this.lingerTimer);
      this.lingerTimer = null;
    }
    this.ready.push(this.filling!);
    this.filling = null;
    this.kick();
  }

  /** The linger is over: send the filling batch if a slot is free, else after the next send. */
  private readonly onLinger = (): void => {
    this.lingerTimer = null;
    if (this.filling !== null && this.inFlight < this.limits.maxInFlightBatches) this.seal();
  };

  /** Send ready batches while slots are free. */
  private kick(): void {
    while (this.ready.length > 0 && this.inFlight < this.limits.maxInFlightBatches) {
      this.inFlight++;
      void this.send(this.ready.shift()!);
    }
  }

  private async send(batch: Batch): Promise<void> {
    const n = batch.records.length;
    try {
      await this.sender.send(batch.records);
      this.stats.sent += n;
      this.stats.batches++;
      batch.resolve();
    } catch (cause) {
      this.stats.failed += n;
      batch.reject(
        new ProducerError("kafka_failed", `Kafka did not acknowledge ${n} records`, { cause }),
      );
    } finally {
      this.inFlight--;
      this.pending -= n;
      if (this.pending === 0) for (const wake of this.idleWaiters.splice(0)) wake();
      this.kick();
      if (this.filling !== null)
        this.lingerTimer ??= setTimeout(this.onLinger, this.limits.lingerMs);
    }
  }
}
