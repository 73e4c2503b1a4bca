// The house's Kafka connections and senders: the one place that knows the client libraries.
// kafkajs 2.2.4 (checked against Kafka 4.4 in test/integration/kafka-client.test.ts) serves the
// admin, the consumers' groups and the dead-letter producer; the ledger relay and the producer
// library send through @platformatic/kafka (recordSender), a choice measured in
// test/bench/producer.bench.ts (same bytes, same broker: 1.3 to 3 times the events/s of kafkajs
// on a busy 2-core machine, about half the CPU per event). Everything else talks to Kafka through
// these few functions, so a switch of client stays local.
import {
  Producer as PlatformaticProducer,
  ProduceAcks,
  stringSerializer,
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
import { murmur2 } from "./murmur2.ts";

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
 * (murmur2 & 0x7fffffff, modulo the partition count; @platformatic/kafka takes the modulo): the
 * library's compatibilityPartitioner, with murmur2 in 32-bit integers instead of BigInt.
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
  const producer = new PlatformaticProducer<string, Buffer, Buffer, Buffer>({
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
