// The set-up both halves of the bad-input barrage run against (barrage-kafka.test.ts,
// barrage-http.test.ts), on the file's test fixture: its own topics and key prefix, a consumer on
// them whose clock is pinned, the Avro codec, Redis, the seed (CF_BARRAGE_SEED replays a run),
// reading a topic back whole, the check that a member ends as the engine says over the valid
// inputs, and the tally of inputs by kind printed when the file ends.
import { randomInt } from "node:crypto";
import type { RunningConsumer } from "@creditflow/consumer";
import type { LedgerEntryRecord, TopicNames } from "@creditflow/contracts";
import { type EngineConfig, type EngineInput, ledgerBalanceMicros } from "@creditflow/engine";
import type { AvroCodec, KafkaConnection } from "@creditflow/kafka";
import type { RedisClient } from "@creditflow/member-store";
import { afterAll, beforeAll, expect } from "vitest";
import {
  type ReadRecord,
  replayMember,
  type StoredMember,
  sumMicros,
  withoutHorizonTimes,
} from "../../services/consumer/testing/harness.ts";
import { type Fixture, fixture } from "./fixture.ts";
import type { Isolation, StackUrls } from "./stack.ts";

/**
 * The barrage's goal is more than 10,000 bad inputs; each half (Kafka, HTTP) sends at least
 * half of them.
 */
export const BAD_INPUTS_PER_HALF = 5_000;

export interface BarrageStack {
  /** The file's test fixture: what the barrage adds is the seed, the consumer and the tally. */
  fx: Fixture;
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
  /** The codec (usage, command and ledger registered in beforeAll). */
  codec: AvroCodec;
  /** Redis (the single one, or the cluster): reads what the consumer wrote. */
  readonly redis: RedisClient;
  /** Set in beforeAll. */
  readonly consumer: RunningConsumer;
  /** Counts one input of `kind` for the tally printed at the end. */
  tally(kind: string): void;
  /** Records on a topic: the sum of its partitions' high-water marks. */
  topicSize(topic: string): Promise<number>;
  /** Every record of a topic, checked complete against its high-water marks. */
  readAll(topic: string): Promise<ReadRecord[]>;
  /** Expects the consumer's /healthz to answer 200. */
  consumerHealthy(): Promise<void>;
  /** Waits (60 s at most) until the consumer committed every record of the topics; still healthy. */
  drained(topics: string[]): Promise<void>;
  /**
   * Expects the member's state in Redis to be the engine's over `inputs` (in order, at nowMs),
   * but for the ids' horizon times, and its ledger entries to sum to its balance; answers it.
   */
  expectAsEngine(
    userId: string,
    inputs: EngineInput[],
    ledger: Map<string, LedgerEntryRecord[]>,
  ): Promise<StoredMember>;
}

/**
 * The barrage's stack for the test file at `fileUrl`, started in a beforeAll and stopped in an
 * afterAll that this registers; call it at the top of the file.
 */
export function useBarrageStack(fileUrl: string): BarrageStack {
  const seed = Number(process.env.CF_BARRAGE_SEED ?? randomInt(2 ** 31));
  console.log(`barrage seed ${seed} (replay: CF_BARRAGE_SEED=${seed})`);
  const fx = fixture(fileUrl, { partitions: 6 });
  const counts = new Map<string, number>();
  let consumer: RunningConsumer | undefined;

  const s: BarrageStack = {
    fx,
    seed,
    // Now, to the minute: Kafka stamps records with their acceptance time, and the duplicate
    // horizon refuses events older than 24 hours by it.
    nowMs: fx.clock.nowMs,
    iso: fx.iso,
    urls: fx.urls,
    topics: fx.topicNames(),
    config: fx.config,
    conn: fx.conn,
    groupId: fx.groupId,
    codec: fx.codec,
    get redis() {
      return fx.redis;
    },
    get consumer() {
      if (consumer === undefined)
        throw new Error("the barrage's consumer is started in its beforeAll");
      return consumer;
    },
    tally: (kind) => counts.set(kind, (counts.get(kind) ?? 0) + 1),
    topicSize: fx.topicSize,
    async readAll(topic) {
      const expected = await fx.topicSize(topic);
      if (expected === 0) return [];
      const records = await fx.readTopic(topic, { expected, timeoutMs: 30_000 });
      expect(records.length, `records read from ${topic}`).toBe(expected);
      return records;
    },
    async consumerHealthy() {
      const health = await fetch(`http://127.0.0.1:${s.consumer.metricsPort}/healthz`);
      expect(health.status).toBe(200);
    },
    async drained(topics) {
      await fx.caughtUp(topics, fx.groupId, 60_000);
      await s.consumerHealthy();
    },
    async expectAsEngine(userId, inputs, ledger) {
      const expected = replayMember(userId, inputs, fx.config, s.nowMs)!;
      const stored = await fx.member(userId);
      expect(withoutHorizonTimes(stored.state!), userId).toEqual(withoutHorizonTimes(expected));
      expect(sumMicros(ledger.get(userId)), userId).toBe(ledgerBalanceMicros(stored.state!));
      return stored;
    },
  };

  beforeAll(async () => {
    await fx.topics();
    consumer = await fx.startConsumer({
      clock: fx.clock.now,
      metricsPort: 0,
      sweeper: false,
      limits: { batchRecords: 500, sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1_000 },
    });
  });

  afterAll(() => {
    const lines = [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `  ${k} ${v}`);
    console.log(`barrage seed ${seed}: inputs by kind\n${lines.join("\n")}`);
  });

  return s;
}
