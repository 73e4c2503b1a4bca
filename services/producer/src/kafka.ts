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

/**
 * ensureTopics: create the topics that are missing, with the broker's default replication
 * factor; existing topics are left as they are.
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
        waitForLeaders: true,
      });
    }
  } finally {
    await admin.disconnect();
  }
}
