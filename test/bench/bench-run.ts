// What every benchmark against the local stack sets up the same way: the services' addresses
// (KAFKA_BROKERS, SCHEMA_REGISTRY_URL, REDIS_URL, CLICKHOUSE_URL; by default the local stack's
// ports), and a run of its own: an id its topics, Redis keys and databases are named after (so a
// run removes only what it made), the engine config of the shipped files and a Kafka connection.
import { randomBytes } from "node:crypto";
import { type TopicNames, topicNames } from "@creditflow/contracts";
import type { EngineConfig } from "@creditflow/engine";
import { connectKafka, type KafkaConnection } from "@creditflow/kafka";
import { loadConfig } from "../../services/consumer/testing/shipped-config.ts";

// kafkajs warns at every producer that its default partitioner changed (v2): known, not news.
process.env.KAFKAJS_NO_PARTITIONER_WARNING = "1";

/** Where the stack's services are. */
export const benchStack = {
  brokers: (process.env.KAFKA_BROKERS ?? "127.0.0.1:19092").split(","),
  registryUrl: process.env.SCHEMA_REGISTRY_URL ?? "http://127.0.0.1:18081/apis/ccompat/v7",
  redisUrl: process.env.REDIS_URL ?? "redis://127.0.0.1:16379",
  clickhouseUrl: process.env.CLICKHOUSE_URL ?? "http://127.0.0.1:18123",
};

export interface BenchRun {
  /** `bench_<name>_<8 hex digits>`: this run's only. */
  id: string;
  /** `t_<id>`: the prefix of the run's topics (a service process's CF_TOPIC_PREFIX). */
  topicPrefix: string;
  topics: TopicNames;
  /** `bench:<id>:`: the prefix of the run's Redis keys. */
  keyPrefix: string;
  /** The engine config of deploy/config. */
  config: EngineConfig;
  conn: KafkaConnection;
}

/** A run of the benchmark `name` (a few lowercase letters). */
export function benchRun(name: string): BenchRun {
  const id = `bench_${name}_${randomBytes(4).toString("hex")}`;
  const topicPrefix = `t_${id}`;
  return {
    id,
    topicPrefix,
    topics: topicNames(topicPrefix),
    keyPrefix: `bench:${id}:`,
    config: loadConfig(),
    conn: connectKafka(benchStack.brokers, `bench-${id}`),
  };
}
