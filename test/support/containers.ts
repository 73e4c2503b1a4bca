// The same stack as deploy/local, from the official images, for machines with a Docker
// engine (CF_TESTCONTAINERS=1). Host ports equal the local stack's, because Kafka must
// advertise an address that clients outside the container can reach.
import { GenericContainer, type StartedTestContainer, Wait } from "testcontainers";
import type { StackUrls } from "./stack.ts";

const images = {
  kafka: process.env.CF_KAFKA_IMAGE ?? "apache/kafka:4.1.1",
  registry: process.env.CF_REGISTRY_IMAGE ?? "apicurio/apicurio-registry:3.3.3",
  redis: process.env.CF_REDIS_IMAGE ?? "redis:7.4",
  clickhouse: process.env.CF_CLICKHOUSE_IMAGE ?? "clickhouse/clickhouse-server:26.7",
};

const port = {
  kafka: Number(process.env.CF_KAFKA_PORT ?? 19092),
  registry: Number(process.env.CF_REGISTRY_PORT ?? 18081),
  redis: Number(process.env.CF_REDIS_PORT ?? 16379),
  clickhouse: Number(process.env.CF_CLICKHOUSE_PORT ?? 18123),
};

export async function startContainers(): Promise<{ urls: StackUrls; stop: () => Promise<void> }> {
  const started: StartedTestContainer[] = [];
  const kafka = new GenericContainer(images.kafka)
    .withExposedPorts({ container: port.kafka, host: port.kafka })
    .withEnvironment({
      KAFKA_NODE_ID: "1",
      KAFKA_PROCESS_ROLES: "broker,controller",
      KAFKA_LISTENERS: `PLAINTEXT://:${port.kafka},CONTROLLER://:9093`,
      KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://127.0.0.1:${port.kafka}`,
      KAFKA_CONTROLLER_LISTENER_NAMES: "CONTROLLER",
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
      KAFKA_CONTROLLER_QUORUM_VOTERS: "1@localhost:9093",
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: "1",
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: "1",
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: "1",
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: "0",
    })
    .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/));
  const registry = new GenericContainer(images.registry)
    .withExposedPorts({ container: 8080, host: port.registry })
    .withEnvironment({ APICURIO_RULES_GLOBAL_COMPATIBILITY: "BACKWARD" })
    .withWaitStrategy(Wait.forHttp("/apis/ccompat/v7/subjects", 8080));
  const redis = new GenericContainer(images.redis)
    .withExposedPorts({ container: 6379, host: port.redis })
    .withCommand([
      "redis-server",
      "--appendonly",
      "yes",
      "--appendfsync",
      "everysec",
      "--auto-aof-rewrite-min-size",
      "1gb",
    ])
    .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/));
  const clickhouse = new GenericContainer(images.clickhouse)
    .withExposedPorts({ container: 8123, host: port.clickhouse })
    .withEnvironment({ CLICKHOUSE_SKIP_USER_SETUP: "1" })
    .withWaitStrategy(Wait.forHttp("/ping", 8123));
  try {
    for (const c of await Promise.all([kafka, registry, redis, clickhouse].map((g) => g.start()))) {
      started.push(c);
    }
  } catch (error) {
    await Promise.allSettled(started.map((c) => c.stop()));
    throw error;
  }
  return {
    urls: {
      kafkaBrokers: [`127.0.0.1:${port.kafka}`],
      schemaRegistryUrl: `http://127.0.0.1:${port.registry}/apis/ccompat/v7`,
      redisUrl: `redis://127.0.0.1:${port.redis}`,
      clickhouseUrl: `http://127.0.0.1:${port.clickhouse}`,
      source: "testcontainers",
    },
    stop: async () => {
      await Promise.allSettled(started.map((c) => c.stop()));
    },
  };
}
