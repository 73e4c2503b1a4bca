// The thin Kafka adapter: the one place that knows the client library (kafkajs 2.2.4, chosen
// and checked against Kafka 4.4 in test/integration/kafka-client.test.ts). Everything else
// talks to Kafka through these few functions, so a switch of client stays local.
import { type Admin, CompressionTypes, Kafka, logLevel, type Producer } from "kafkajs";

export type { Admin, Producer } from "kafkajs";

export interface KafkaConnection {
  kafka: Kafka;
  clientId: string;
}

export function connectKafka(brokers: string[], clientId: string): KafkaConnection {
  return {
    clientId,
    kafka: new Kafka({ clientId, brokers, logLevel: logLevel.ERROR, retry: { retries: 8 } }),
  };
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

/** How long ensureTopics waits for every partition of new topics to have a leader. */
const TOPIC_LEADERS_TIMEOUT_MS = 60_000;

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
        topics: missing.map((topic) => ({ topic, numPartitions })),
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
 * moment after creating a topic; here any error means "not yet", until the timeout.
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
  throw new Error(
    `topics ${topics.join(", ")} have no leader after ${TOPIC_LEADERS_TIMEOUT_MS} ms`,
    {
      cause: last,
    },
  );
}
