// The house's Kafka connections and senders: the one place that knows the client libraries.
// kafkajs 2.2.4 (checked against Kafka 4.4 in test/integration/kafka-client.test.ts) serves the
// admin, the consumers' groups and the dead-letter producer; the ledger relay and the producer
// library send through @platformatic/kafka (recordSender), a choice measured in
// test/bench/producer.bench.ts (same bytes, same broker: 1.3 to 3 times the events/s of kafkajs
// on a busy 2-core machine, about half the CPU per event). Everything else talks to Kafka through
// these few functions, so a switch of client stays local.
import {
  type API,
  type Callback,
  type CreateRecordsBatchOptions,
  crc32c,
  createAPI,
  kGetApi,
  type MessageRecord,
  Producer as PlatformaticProducer,
  ProduceAcks,
  produceV11,
  stringSerializer,
  Writer,
} from "@platformatic/kafka";
import {
  type Admin,
  CompressionTypes,
  Kafka,
  type logCreator,
  logLevel,
  type Producer,
} from "kafkajs";
import type { Logger } from "pino";
import { KafkaError } from "./errors.ts";
import { encodeProduceBody, encodeRecordBatch, murmur2 } from "./record-batch.ts";

export type { Admin, Producer } from "kafkajs";

export interface KafkaConnection {
  kafka: Kafka;
  clientId: string;
}

/**
 * A kafkajs client (errors only, 8 retries). With `logger`, kafkajs's lines go to it (a child
 * `{ logger: "kafkajs" }`, at kafkajs's own level) instead of straight to the console, so a
 * service's log level also governs them: a group's expected "rebalancing" answers among them.
 */
export function connectKafka(
  brokers: string[],
  clientId: string,
  logger?: Logger,
): KafkaConnection {
  return {
    clientId,
    kafka: new Kafka({
      clientId,
      brokers,
      logLevel: logLevel.ERROR,
      retry: { retries: 8 },
      ...(logger === undefined ? {} : { logCreator: kafkajsToPino(logger) }),
    }),
  };
}

/** kafkajs's log entries into a pino logger, level for level. */
function kafkajsToPino(logger: Logger): logCreator {
  const log = logger.child({ logger: "kafkajs" });
  return () =>
    ({ namespace, level, log: { message, timestamp: _, ...fields } }) => {
      const entry = { namespace, ...fields };
      if (level === logLevel.ERROR) log.error(entry, message);
      else if (level === logLevel.WARN) log.warn(entry, message);
      else if (level === logLevel.INFO) log.info(entry, message);
      else log.debug(entry, message);
    };
}

/** The errors on which kafkajs's consumer rejoins its group (UNKNOWN_MEMBER_ID with a new id). */
const REJOIN_TYPES = new Set([
  "REBALANCE_IN_PROGRESS",
  "NOT_COORDINATOR_FOR_GROUP",
  "ILLEGAL_GENERATION",
  "UNKNOWN_MEMBER_ID",
]);

/**
 * The group error kafkajs's consumer acts on (rejoin; after NOT_COORDINATOR_FOR_GROUP, with the
 * coordinator looked up again), found in `error` or its causes: kafkajs's own retries hand it
 * over wrapped in KafkaJSNumberOfRetriesExceeded, which the consumer does not recognise. A
 * consumer's callback throws what this returns; null when the error is something else. Seen in
 * a chaos run: Kafka's periodic preferred-leader election moved a group's coordinator, and a
 * consumer that threw the wrapped error kept asking the old one for minutes.
 */
export function rejoinErrorOf(error: unknown): Error | null {
  let e: unknown = error;
  for (let depth = 0; depth < 8 && typeof e === "object" && e !== null; depth++) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === "string" && REJOIN_TYPES.has(type)) return e as Error;
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}

/**
 * An idempotent producer: acks=all on every send, sequence numbers per partition, so a retry
 * after a lost acknowledgement never writes a record twice.
 */
export function idempotentProducer(conn: KafkaConnection): Producer {
  return conn.kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
  });
}

export const compressionOf = { gzip: CompressionTypes.GZIP, none: CompressionTypes.None } as const;

/** One record for a RecordSender: a string key (the user id) and the encoded value. */
export interface OutgoingRecord {
  topic: string;
  key: string;
  value: Buffer;
}

/** How the producer library hands records to Kafka. */
export interface RecordSender {
  /**
   * Send records of any topics in one call; resolves once the leaders acknowledged every one
   * (acks=all), rejects with the client's error otherwise. Records of one key keep their order.
   */
  send(records: OutgoingRecord[]): Promise<void>;
  /** Disconnect; call after the last send settled. */
  close(): Promise<void>;
}

/**
 * The partition of a key, as the Java client and kafkajs' default partitioner choose it
 * (murmur2 & 0x7fffffff, modulo the partition count; @platformatic/kafka takes the modulo).
 * It stands for the library's compatibilityPartitioner, which computes the same hash in BigInt
 * arithmetic: record-batch.ts's murmur2 in 32-bit integers was measured together with
 * createProduceRequest (below), not on its own.
 */
export function keyPartitioner(_message: unknown, key: Buffer | undefined): number {
  return Buffer.isBuffer(key) ? murmur2(key) & 0x7fffffff : 0;
}

/**
 * The partition a producer puts `key` on, in a topic of `partitions` partitions (keyPartitioner,
 * kafkajs' default partitioner, the Java client's): where the consumer knows a member's records
 * are, and so which consumer owns the member's deadline shard.
 */
export function keyPartition(key: string, partitions: number): number {
  return (murmur2(Buffer.from(key, "utf8")) & 0x7fffffff) % partitions;
}

/**
 * A Produce v11 request (what @platformatic/kafka sends to Kafka 4) built by record-batch.ts:
 * one buffer per partition instead of the library's few per record. What it does not cover
 * (compression, transactions, headers, several topics) goes to the library's own builder.
 *
 * Why it is hand-written, as measured: with the library's builder the consumer's ledger relay
 * (uncompressed sends) was about a fifth of the consumer's CPU in its profiles, and about 2 % with
 * this one. test/bench/consumer.bench.ts, the code without and with it: 42-45 against 30-33 ms
 * CPU per 1,000 events, the ratio to the bench's baseline 25-30 % against 35-39 % (commit
 * c171f0a, which also brought murmur2 in 32-bit integers: the two were measured together). Not
 * measured since on today's consumer (23.5 to 24.1 ms per 1,000 events, docs/BENCHMARKS.md).
 * record-batch.test.ts checks, for random records, that the bytes are the library's.
 */
export function createProduceRequest(
  acks: number | undefined,
  timeout: number | undefined,
  messages: MessageRecord[],
  options: Partial<CreateRecordsBatchOptions> = {},
): Writer {
  const topic = messages[0]?.topic;
  const plain =
    topic !== undefined &&
    (options.compression ?? "none") === "none" &&
    !options.transactionalId &&
    messages.every((m) => m.topic === topic && (m.headers === undefined || m.headers.size === 0));
  if (!plain) return produceV11.createRequest(acks, timeout, messages, options);
  const byPartition = new Map<number, MessageRecord[]>();
  for (const m of messages) {
    const partition = m.partition ?? 0;
    const list = byPartition.get(partition);
    if (list === undefined) byPartition.set(partition, [m]);
    else list.push(m);
  }
  const nowMs = BigInt(Date.now());
  const batches = [...byPartition]
    .sort(([a], [b]) => a - b)
    .map(([partition, records]) => ({
      partition,
      batch: encodeRecordBatch(
        records,
        {
          producerId: options.producerId ?? -1n,
          producerEpoch: options.producerEpoch ?? 0,
          firstSequence: options.sequences?.getWithDefault(`${topic}:${partition}`, 0) ?? 0,
          nowMs,
        },
        crc32c,
      ),
    }));
  const writer = Writer.create().append(encodeProduceBody(acks ?? 1, timeout ?? 0, topic, batches));
  if (acks === ProduceAcks.NO_RESPONSE) writer.context.noResponse = true;
  return writer;
}

const produceV11Fast = createAPI(0, 11, createProduceRequest, produceV11.parseResponse);

/**
 * @platformatic/kafka's producer with Produce v11 requests built by createProduceRequest. The
 * library offers no public hook for its request builder: this overrides its symbol-keyed
 * `kGetApi` (exported, not documented), so an upgrade of the library must pass
 * record-batch.test.ts and test/integration/kafka-client.test.ts before it is taken. The reason
 * is createProduceRequest's measurement above; without it, use PlatformaticProducer itself.
 */
class FastProducer<K, V, HK, HV> extends PlatformaticProducer<K, V, HK, HV> {
  override [kGetApi]<A extends Array<unknown>, R>(name: string, callback: Callback<API<A, R>>) {
    super[kGetApi]<A, R>(name, (error, api) => {
      if (error === null && name === "Produce" && api?.version === 11) {
        callback(null, produceV11Fast as unknown as API<A, R>);
      } else callback(error, api);
    });
  }
}

/** Retries of one produce request on a retriable error (leader moved, broker unreachable). */
const SEND_RETRIES = 8;
/** Backoff before retry n (1-based): 250 ms doubling, at most 5 s (about 25 s in all). */
const retryDelayMs = (attempt: number) => Math.min(250 * 2 ** (attempt - 1), 5_000);

/**
 * recordSender: an idempotent producer (acks=all, one request in flight per broker, sequence
 * numbers per partition: a retried request is written once) on @platformatic/kafka, keyed with
 * the Java client's partitioner, the one kafkajs uses too, so a key lands on the same partition
 * whichever of our clients wrote it. Resolves once Kafka assigned a producer id, so a broker
 * that cannot be reached fails here, not at the first send.
 */
export async function recordSender(
  brokers: string[],
  clientId: string,
  options: { compression: "gzip" | "none"; requestTimeoutMs: number },
): Promise<RecordSender> {
  // Compressed sends keep the library's own (asynchronous, for gzip) request builder.
  const Client = options.compression === "none" ? FastProducer : PlatformaticProducer;
  const producer = new Client<string, Buffer, Buffer, Buffer>({
    clientId,
    bootstrapBrokers: brokers,
    idempotent: true,
    acks: ProduceAcks.ALL,
    compression: options.compression,
    partitioner: keyPartitioner,
    serializers: { key: stringSerializer },
    autocreateTopics: false,
    timeout: options.requestTimeoutMs,
    retries: SEND_RETRIES,
    retryDelay: (_client, _operation, attempt) => retryDelayMs(attempt),
  });
  try {
    await producer.initIdempotentProducer({});
  } catch (error) {
    await producer.close().catch(() => undefined);
    throw error;
  }
  return {
    async send(records) {
      await producer.send({ messages: records });
    },
    close: () => producer.close(),
  };
}

/** How long ensureTopics waits for every partition of new topics to have a leader. */
const TOPIC_LEADERS_TIMEOUT_MS = 60_000;

/** How many partitions the topic has (it must exist: KafkaError no_partitions otherwise). */
export async function partitionCount(conn: KafkaConnection, topic: string): Promise<number> {
  const admin: Admin = conn.kafka.admin();
  await admin.connect();
  try {
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    const count = topics[0]?.partitions.length ?? 0;
    if (count === 0) throw new KafkaError("no_partitions", `topic ${topic} has no partitions`);
    return count;
  } finally {
    await admin.disconnect();
  }
}

/**
 * ensureTopics: create the topics that are missing, with the broker's default replication
 * factor, and wait until every partition has a leader; existing topics are left as they are.
 */
export async function ensureTopics(
  conn: KafkaConnection,
  topics: string[],
  numPartitions: number,
): Promise<void> {
  const admin: Admin = conn.kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t));
    if (missing.length > 0) {
      await admin.createTopics({
        topics: missing.map((topic) => ({
          topic,
          numPartitions,
          // The broker stamps each record with when it accepted it: the consumer measures an
          // input's age for the duplicate horizon against that, never against a sender's clock.
          configEntries: [{ name: "message.timestamp.type", value: "LogAppendTime" }],
        })),
        waitForLeaders: false,
      });
      await waitForLeaders(admin, missing);
    }
  } finally {
    await admin.disconnect();
  }
}

/**
 * waitForLeaders: poll metadata until every partition of `topics` has a leader. kafkajs' own
 * waitForLeaders gives up on UNKNOWN_TOPIC_OR_PARTITION, which a busy broker answers for a
 * moment after creating a topic; here any error means "not yet", until the timeout
 * (KafkaError topics_not_ready, the last error as its cause).
 */
export async function waitForLeaders(admin: Admin, topics: string[]): Promise<void> {
  const deadline = Date.now() + TOPIC_LEADERS_TIMEOUT_MS;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const { topics: meta } = await admin.fetchTopicMetadata({ topics });
      const ready =
        meta.length === topics.length &&
        meta.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0));
      if (ready) return;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new KafkaError(
    "topics_not_ready",
    `topics ${topics.join(", ")} have no leader after ${TOPIC_LEADERS_TIMEOUT_MS} ms`,
    { cause: last },
  );
}
