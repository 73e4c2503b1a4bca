// The deduction consumer's shell around its unit of work (unit-of-work.ts): options, the Kafka
// client and its group membership (kafkajs: batches cut into units, heartbeats, rejoins), Redis
// and the member store, the sweeper's timer over the partitions this process owns, the metrics
// server and the shutdown. startConsumer is the one entry.

import type { SourceKind } from "@creditflow/contracts";
import {
  AvroCodec,
  connectKafka,
  ensureTopics,
  idempotentProducer,
  keyPartition,
  type Producer,
  partitionCount,
  type RecordSender,
  recordSender,
  rejoinErrorOf,
} from "@creditflow/kafka";
import { connectRedis, keySpace, MemberStore } from "@creditflow/member-store";
import type { Consumer, EachBatchPayload } from "kafkajs";
import { pino } from "pino";
import { MemberCache } from "./cache.ts";
import { ConsumerError } from "./errors.ts";
import { ConsumerMetrics, serveMetrics } from "./metrics.ts";
import {
  type ConsumerLimits,
  type ConsumerOptions,
  type FaultStage,
  resolveLimits,
} from "./options.ts";
import { KafkaOut } from "./relay.ts";
import {
  kafkaConnectionFailure,
  redisFailure,
  retryingWhileStarting,
  STARTUP_KAFKA_WAIT_MS,
  STARTUP_REDIS_WAIT_MS,
} from "./startup.ts";
import { type OffsetCommit, UnitOfWork } from "./unit-of-work.ts";
import { UnitSizer } from "./unit-size.ts";

/** Partitions of the consumer's own output topics when it has to create them. */
const OUTPUT_PARTITIONS = 12;

export interface RunningConsumer {
  metrics: ConsumerMetrics;
  /** Port of /metrics and /healthz, when served. */
  metricsPort: number | null;
  /** Finishes the unit in hand, relays, commits, disconnects. Idempotent. */
  stop(): Promise<void>;
  /** One sweeper pass now (tests); resolves with the members written. */
  sweepOnce(): Promise<number>;
  /** Resolves once the consumer has joined its group for the first time. */
  joined: Promise<void>;
}

export async function startConsumer(options: ConsumerOptions): Promise<RunningConsumer> {
  const cluster = (options.redisClusterNodes?.length ?? 0) > 0;
  const limits: ConsumerLimits = resolveLimits(options.limits, cluster);
  if (options.brokers.length === 0) {
    throw new ConsumerError("invalid_options", "brokers: at least one broker is needed");
  }
  const log = options.logger ?? pino({ name: "creditflow-consumer" });
  const clock = options.clock ?? Date.now;
  const topics = options.topics;
  const clientId = options.clientId ?? `cf-consumer-${process.pid}`;
  const metrics = new ConsumerMetrics();
  // A broker or Redis restarting while this process starts is waited for (startup.ts), each retry
  // logged with where it failed: a start-up step is idempotent, so it is simply tried again.
  const logRetry =
    (on: "broker" | "redis") =>
    (r: { step: string; attempt: number; where: string; error: unknown }) =>
      log.warn(
        { step: r.step, attempt: r.attempt, [on]: r.where, detail: (r.error as Error)?.message },
        "start-up step failed; trying again",
      );
  const whileKafkaStarts = <T>(name: string, run: () => Promise<T>): Promise<T> =>
    retryingWhileStarting(run, {
      name,
      waitMs: STARTUP_KAFKA_WAIT_MS,
      passing: kafkaConnectionFailure,
      onRetry: logRetry("broker"),
    });

  const codec = new AvroCodec(options.schemaRegistryUrl);
  await codec.register(topics, ["usage", "command", "ledger"]);
  const conn = connectKafka(options.brokers, clientId, log);
  await whileKafkaStarts("create the output topics", () =>
    ensureTopics(conn, [topics.ledger, topics.deadLetters], OUTPUT_PARTITIONS),
  );
  let redis: ReturnType<typeof connectRedis>;
  try {
    redis = connectRedis(
      { redisUrl: options.redisUrl, redisClusterNodes: options.redisClusterNodes },
      { maxRetriesPerRequest: 3, enableAutoPipelining: false },
    );
  } catch (cause) {
    throw new ConsumerError("invalid_options", (cause as Error).message, { cause });
  }
  // A member's deadline lives in the shard of its usage partition (the producers' partitioner
  // over the topic's partitions; the commands topic has as many): the consumer that owns the
  // partition sweeps it, and hands it over with the partition in a rebalance.
  const usagePartitions = await whileKafkaStarts(`partition count of ${topics.usage}`, () =>
    partitionCount(conn, topics.usage),
  );
  const store = new MemberStore(
    redis,
    keySpace(options.keyPrefix),
    {
      ...limits,
      deadlineShardOf: (userId) => keyPartition(userId, usagePartitions),
      onRedirect: (why) => metrics.redisRedirections.inc({ why }),
    },
    (record) => codec.encode("ledger", record),
  );
  // An index left by an earlier version (one key for every member) goes into the shards first.
  // Redis may be restarting while this process starts: retried for STARTUP_REDIS_WAIT_MS.
  const movedDeadlines = await retryingWhileStarting(() => store.moveUnshardedDeadlines(), {
    name: "move the unsharded deadline index",
    waitMs: STARTUP_REDIS_WAIT_MS,
    passing: redisFailure,
    onRetry: logRetry("redis"),
  });
  if (movedDeadlines > 0) log.info({ movedDeadlines }, "deadline index sharded");
  /** The usage partitions this process owns: the deadline shards its sweeper takes. */
  let sweptShards: number[] = [];
  // Units sized to end well inside the session and rebalance timeouts at the machine's pace: a
  // third of the session (heartbeats go on during a unit) and a sixth of the rebalance timeout.
  const unitSizer = new UnitSizer(
    limits.batchRecords,
    Math.min(limits.sessionTimeoutMs / 3, limits.rebalanceTimeoutMs / 6),
  );
  const producer: Producer = idempotentProducer(conn);
  await whileKafkaStarts("connect the dead-letter producer", () => producer.connect());
  const ledgerSender: RecordSender = await whileKafkaStarts("connect the ledger sender", () =>
    recordSender(options.brokers, `${clientId}-ledger`, {
      compression: "none",
      requestTimeoutMs: 30_000,
    }),
  );
  const consumer: Consumer = conn.kafka.consumer({
    groupId: options.groupId,
    sessionTimeout: limits.sessionTimeoutMs,
    rebalanceTimeout: limits.rebalanceTimeoutMs,
    heartbeatInterval: limits.heartbeatIntervalMs,
    maxBytesPerPartition: limits.maxBytesPerPartition,
    maxBytes: limits.maxBytesPerFetch,
    maxWaitTimeInMs: 100,
    allowAutoTopicCreation: false,
  });

  let stopping = false;
  let joinedOnce = false;
  let crashed: Error | null = null;
  let resolveJoined!: () => void;
  const joined = new Promise<void>((resolve) => {
    resolveJoined = resolve;
  });
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    joinedOnce = true;
    sweptShards = [...(e.payload.memberAssignment[topics.usage] ?? [])];
    // kafkajs restarted the consumer after a retriable crash (e.g. "the coordinator is loading"
    // on a fresh broker) and it is back in its group: healthy again.
    crashed = null;
    log.info(
      { memberId: e.payload.memberId, assigned: e.payload.memberAssignment },
      "joined group",
    );
    resolveJoined();
  });
  consumer.on(consumer.events.CRASH, (e) => {
    crashed = e.payload.error;
    log.error({ err: e.payload.error, restart: e.payload.restart }, "consumer crashed");
  });

  /** The crash and slow-machine tests' hooks (never set in production): see ConsumerOptions. */
  const { faultKill, faultPause } = options;
  const afterStep =
    faultKill === undefined && faultPause === undefined
      ? undefined
      : (unit: number, stage: FaultStage): Promise<void> | undefined => {
          if (faultKill !== undefined && faultKill.unit === unit && faultKill.stage === stage) {
            // Dies like a power cut: no cleanup, no flush.
            log.warn({ unit, stage }, "fault injection: SIGKILL");
            process.kill(process.pid, "SIGKILL");
          }
          if (stage === "after_write" && faultPause !== undefined && faultPause.unit === unit) {
            log.warn({ unit, ms: faultPause.ms }, "fault injection: pause");
            return new Promise((resolve) => setTimeout(resolve, faultPause.ms));
          }
          return undefined;
        };
  const offsets: OffsetCommit = {
    async commit(next) {
      try {
        await consumer.commitOffsets(next);
      } catch (cause) {
        // kafkajs rejoins the group (and looks the coordinator up again) only on the group errors
        // it sees itself, not on the retries-exceeded error they come wrapped in.
        const at = next.map((o) => `${o.topic}[${o.partition}]`).join(", ");
        throw rejoinErrorOf(cause) ?? new ConsumerError("kafka_failed", `commit ${at}`, { cause });
      }
    },
  };
  const work = new UnitOfWork({
    store,
    relay: new KafkaOut(ledgerSender, producer, topics),
    offsets,
    cache: new MemberCache(limits.cachedMembers),
    decoder: codec,
    config: options.config,
    clock,
    limits,
    metrics,
    log,
    afterStep,
  });

  // Heartbeats go on whatever kafkajs is doing, as the Java client's heartbeat thread does: in a
  // unit slowed down by a loaded machine, and while kafkajs itself takes its time to rejoin (a
  // rejoin looks the coordinator up, which waited 28 s on a restarted broker in a chaos run:
  // without heartbeats the session expired meanwhile, the rebalance went on without the member,
  // and two consumers dropped each other in turn for minutes). kafkajs sends one at most every
  // heartbeatInterval, shared between callers. Like the Java client's max.poll.interval, they stop
  // when the process has made no progress (a fetch, a unit) for rebalanceTimeoutMs, so a stuck
  // process still loses its partitions. A rebalance learnt of during a batch ends the batch after
  // the unit in hand, so the process rejoins at once.
  let groupHeartbeat: (() => Promise<void>) | null = null;
  let lastProgressMs = performance.now();
  let batchesInFlight = 0;
  let rejoin: unknown = null;
  const progress = () => {
    lastProgressMs = performance.now();
  };
  consumer.on(consumer.events.FETCH, progress);
  consumer.on(consumer.events.GROUP_JOIN, () => {
    // Back in the group: a rebalance learnt of before is over.
    rejoin = null;
    progress();
  });
  const keepAlive = setInterval(() => {
    if (groupHeartbeat === null || stopping) return;
    if (performance.now() - lastProgressMs > limits.rebalanceTimeoutMs) return;
    groupHeartbeat().catch((err: unknown) => {
      // Outside a batch, kafkajs is already at the group's business itself.
      if (batchesInFlight > 0) rejoin ??= rejoinErrorOf(err) ?? err;
    });
  }, limits.heartbeatIntervalMs);
  keepAlive.unref();

  async function eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const kind: SourceKind = batch.topic === topics.usage ? "usage" : "command";
    groupHeartbeat = heartbeat;
    progress();
    batchesInFlight++;
    try {
      for (let at = 0; at < batch.messages.length; ) {
        // A unit in hand is finished; the next one waits for the next owner or the next run.
        if (!isRunning() || isStale()) break;
        const unit = batch.messages.slice(at, at + unitSizer.next(batch.messages.length - at));
        at += unit.length;
        const unitStarted = performance.now();
        try {
          await work.applyRecords(batch.topic, batch.partition, kind, unit, heartbeat);
        } finally {
          // A failed unit counts too: one that outlived its session shrinks the next.
          unitSizer.observe(unit.length, performance.now() - unitStarted);
          progress();
        }
        const last = unit[unit.length - 1]!;
        resolveOffset(last.offset);
        metrics.lag.set(
          { topic: batch.topic, partition: String(batch.partition) },
          Math.max(0, Number(batch.highWatermark) - Number(last.offset) - 1),
        );
        // Every batch in flight ends here; the join clears it.
        if (rejoin !== null) throw rejoin;
        await heartbeat();
      }
    } finally {
      batchesInFlight--;
    }
  }

  // The sweeper: members whose next deadline passed, in the deadline shards of the usage
  // partitions this process owns, one pass at a time.
  let sweeping: Promise<number> | null = null;
  const ownedShards = () => sweptShards;
  const isStopping = () => stopping;
  function guardedSweep(): Promise<number> {
    sweeping ??= work.sweep(ownedShards, isStopping).finally(() => {
      sweeping = null;
    });
    return sweeping;
  }
  let sweeperTimer: NodeJS.Timeout | null = null;
  const scheduleSweep = () => {
    if (stopping || options.sweeper === false) return;
    sweeperTimer = setTimeout(() => {
      guardedSweep()
        .catch((err: unknown) => log.error({ err }, "sweeper pass failed"))
        .finally(scheduleSweep);
    }, limits.sweeperIntervalMs);
  };

  await whileKafkaStarts("connect the group consumer", () => consumer.connect());
  await whileKafkaStarts("subscribe", () =>
    consumer.subscribe({ topics: [topics.usage, topics.commands], fromBeginning: true }),
  );
  // The group join runs in the background: kafkajs restarts it after a failed connection itself
  // (a CRASH event with restart, then GROUP_JOIN).
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: limits.partitionsConcurrently,
    eachBatch,
  });
  scheduleSweep();

  let server: Awaited<ReturnType<typeof serveMetrics>> | null = null;
  if (options.metricsPort !== undefined) {
    server = await serveMetrics(metrics, options.metricsPort, () => ({
      ok: joinedOnce && crashed === null && !stopping,
      detail: { joined: joinedOnce, stopping, crashed: crashed === null ? null : String(crashed) },
    }));
  }
  log.info(
    { groupId: options.groupId, topics, limits, metricsPort: server?.port },
    "consumer started",
  );

  let stopped: Promise<void> | null = null;
  const stop = () => {
    stopped ??= (async () => {
      stopping = true;
      clearInterval(keepAlive);
      if (sweeperTimer !== null) clearTimeout(sweeperTimer);
      // disconnect() waits for the batch in hand (eachBatch stops between units).
      await consumer.disconnect();
      if (sweeping !== null) await sweeping.catch(() => undefined);
      await producer.disconnect();
      await ledgerSender.close();
      await redis.quit();
      if (server !== null) await server.server.close();
      log.info("consumer stopped");
    })();
    return stopped;
  };
  return { metrics, metricsPort: server?.port ?? null, stop, sweepOnce: guardedSweep, joined };
}
