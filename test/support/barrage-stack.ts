// The set-up both halves of the bad-input barrage run against (barrage-kafka.test.ts,
// barrage-http.test.ts): the file's own topics and key prefix, a consumer on them whose clock is
// pinned, the Avro codec, Redis, the seed (CF_BARRAGE_SEED replays a run), reading a topic back
// whole, and the tally of inputs by kind printed when the file ends.
import { randomInt } from "node:crypto";
import type { RunningConsumer } from "@creditflow/consumer";
import { type TopicNames, topicNames } from "@creditflow/contracts";
import type { EngineConfig } from "@creditflow/engine";
import { AvroCodec, connectKafka, ensureTopics, type KafkaConnection } from "@creditflow/kafka";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, expect } from "vitest";
import {
  loadConfig,
  type ReadRecord,
  readTopic,
  startTestConsumer,
} from "../../services/consumer/testing/harness.ts";
import { type Isolation, isolation, type StackUrls, stack } from "./stack.ts";

/**
 * The barrage's goal is more than 10,000 bad inputs; each half (Kafka, HTTP) sends at least
 * half of them.
 */
export const BAD_INPUTS_PER_HALF = 5_000;

export interface BarrageStack {
  /** Seeds the file's generators; printed at the start so a failure can be replayed. */
  seed: number;
  /** Every clock (consumer, API) is pinned here, so the engine replay sees the same times. */
  nowMs: number;
  iso: Isolation;
  urls: StackUrls;
  topics: TopicNames;
  config: EngineConfig;
  conn: KafkaConnection;
  /** The consumer's group: waitCaughtUp on it says every record was handled. */
  groupId: string;
  /** Set in beforeAll: the codec (usage, command and ledger registered), Redis, the consumer. */
  codec: AvroCodec;
  readonly redis: Redis;
  readonly consumer: RunningConsumer;
  /** Counts one input of `kind` for the tally printed at the end. */
  tally(kind: string): void;
  /** Records on a topic: the sum of its partitions' high-water marks. */
  topicSize(topic: string): Promise<number>;
  /** Every record of a topic, checked complete against its high-water marks. */
  readAll(topic: string): Promise<ReadRecord[]>;
  /** Expects the consumer's /healthz to answer 200. */
  consumerHealthy(): Promise<void>;
}

/**
 * The barrage's stack for the test file at `fileUrl`, started in a beforeAll and stopped in an
 * afterAll that this registers; call it at the top of the file.
 */
export function useBarrageStack(fileUrl: string): BarrageStack {
  const seed = Number(process.env.CF_BARRAGE_SEED ?? randomInt(2 ** 31));
  console.log(`barrage seed ${seed} (replay: CF_BARRAGE_SEED=${seed})`);
  const iso = isolation(fileUrl);
  const urls = stack();
  const conn = connectKafka(urls.kafkaBrokers, `test-${iso.id}`);
  const counts = new Map<string, number>();
  let redis: Redis | undefined;
  let consumer: RunningConsumer | undefined;
  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the barrage's ${what} is started in its beforeAll`);
    return value;
  };

  async function topicSize(topic: string): Promise<number> {
    const admin = conn.kafka.admin();
    await admin.connect();
    try {
      return (await admin.fetchTopicOffsets(topic)).reduce((s, o) => s + Number(o.high), 0);
    } finally {
      await admin.disconnect();
    }
  }

  const s: BarrageStack = {
    seed,
    // Now, to the minute: Kafka stamps records with their acceptance time, and the duplicate
    // horizon refuses events older than 24 hours by it.
    nowMs: Math.floor(Date.now() / 60_000) * 60_000,
    iso,
    urls,
    topics: topicNames(`t_${iso.id}`),
    config: loadConfig(),
    conn,
    groupId: iso.group("consumer"),
    codec: new AvroCodec(urls.schemaRegistryUrl),
    get redis() {
      return started(redis, "Redis client");
    },
    get consumer() {
      return started(consumer, "consumer");
    },
    tally: (kind) => counts.set(kind, (counts.get(kind) ?? 0) + 1),
    topicSize,
    async readAll(topic) {
      const expected = await topicSize(topic);
      if (expected === 0) return [];
      const records = await readTopic(conn, topic, { expected, timeoutMs: 30_000 });
      expect(records.length, `records read from ${topic}`).toBe(expected);
      return records;
    },
    async consumerHealthy() {
      const health = await fetch(`http://127.0.0.1:${s.consumer.metricsPort}/healthz`);
      expect(health.status).toBe(200);
    },
  };

  beforeAll(async () => {
    await ensureTopics(conn, [s.topics.usage, s.topics.commands], 6);
    await s.codec.register(s.topics, ["usage", "command", "ledger"]);
    redis = new Redis(urls.redisUrl);
    consumer = await startTestConsumer(urls, {
      topics: s.topics,
      keyPrefix: iso.keyPrefix,
      groupId: s.groupId,
      config: s.config,
      clock: () => s.nowMs,
      metricsPort: 0,
      sweeper: false,
      limits: { batchRecords: 500, sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1_000 },
      logger: pino({ level: "fatal" }),
    });
    await consumer.joined;
  });

  afterAll(async () => {
    await consumer?.stop();
    redis?.disconnect();
    const lines = [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `  ${k} ${v}`);
    console.log(`barrage seed ${seed}: inputs by kind\n${lines.join("\n")}`);
  });

  return s;
}
