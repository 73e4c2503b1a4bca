// The set-up every integration file shares, in one place: `const fx = fixture(import.meta.url)`
// at the top of a file gives it the stack's addresses, the engine config of the shipped files,
// topics and a key prefix and a ClickHouse database of its own, a producer, Redis and the member
// store, started consumers, sinks and APIs, a pinned clock, and one afterAll that stops and
// clears all of it. Files run on the single Redis, or on the Redis Cluster when
// REDIS_CLUSTER_NODES is set (stack.ts), without knowing which.
//
// Quiet by default: the consumers, sinks and APIs it starts log nothing below `fatal`, so a
// rebalance or a refusal a test expects prints nothing and a failure stands out. CF_TEST_LOG sets
// their level (CF_TEST_LOG=debug shows kafkajs, the consumer and the sink at work).
import {
  type ClickHouseClient,
  type ClickHouseClientConfigOptions,
  ClickHouseLogLevel,
  createClient,
} from "@clickhouse/client";
import { type Api, buildApi } from "@creditflow/api";
import { type RunningConsumer, startConsumer } from "@creditflow/consumer";
import { type LedgerEntryRecord, type TopicNames, topicNames } from "@creditflow/contracts";
import type { EngineConfig, Plans } from "@creditflow/engine";
import {
  type RebuildSummary,
  type RunningSink,
  rebuildRedis,
  type SinkOptions,
  startSink,
} from "@creditflow/history";
import { AvroCodec, connectKafka, ensureTopics, type KafkaConnection } from "@creditflow/kafka";
import {
  deleteKeysUnder,
  keySpace,
  MemberReader,
  type MemberStore,
  type RedisClient,
} from "@creditflow/member-store";
import { CreditProducer, type ProducerOptions } from "@creditflow/producer";
import { type Logger, pino } from "pino";
import { afterAll, beforeAll } from "vitest";
import { TEST_JWT_SECRET } from "../../services/api/testing/harness.ts";
import {
  ledgerByUser,
  loadConfig,
  type ReadRecord,
  readMember,
  readTopic,
  type StoredMember,
  storeWithoutRelay,
  waitCaughtUp,
} from "../../services/consumer/testing/harness.ts";
import {
  connectTestRedis,
  type Isolation,
  isolation,
  redisEnv,
  redisTarget,
  type StackUrls,
  stack,
} from "./stack.ts";

type ConsumerOptions = Parameters<typeof startConsumer>[0];
type ApiOptions = Parameters<typeof buildApi>[0];
type RebuildOptions = Parameters<typeof rebuildRedis>[0];

/** The admin token of the APIs the fixture starts (`authorization: Bearer <ADMIN_TOKEN>`). */
export const ADMIN_TOKEN = "admin-secret-0123456789";

/** The level of the loggers the fixture hands out: CF_TEST_LOG, else `fatal`. */
export const TEST_LOG_LEVEL = process.env.CF_TEST_LOG || "fatal";

/** A logger at the tests' level (CF_TEST_LOG); quiet unless asked. */
export function testLogger(): Logger {
  return pino({ level: TEST_LOG_LEVEL });
}

/**
 * The consumer limits of a test: a 6 s session and 0.5 s heartbeats, so a stopped consumer's
 * partitions move on quickly. A test's own limits are laid over these, field by field.
 */
export const TEST_CONSUMER_LIMITS = { sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500 };

/**
 * A ClickHouse client with its own logging off: an error a test provokes on purpose prints no
 * stack; the test sees it as the rejection it asserts on.
 */
export function quietClickHouse(options: ClickHouseClientConfigOptions): ClickHouseClient {
  return createClient({ ...options, log: { level: ClickHouseLogLevel.OFF } });
}

/** A clock pinned at a time: the consumer's and the API's `clock`, moved only by the test. */
export interface PinnedClock {
  /** The pinned time, epoch ms. */
  nowMs: number;
  /** The pinned time; pass `clock.now` as a service's clock. */
  now: () => number;
  set(atMs: number): void;
  advance(ms: number): void;
}

/**
 * A clock pinned at `atMs`, by default now to the minute: Kafka stamps records with their
 * acceptance time, and the duplicate horizon refuses inputs older than 24 hours by it.
 */
export function pinnedClock(atMs = Math.floor(Date.now() / 60_000) * 60_000): PinnedClock {
  const clock: PinnedClock = {
    nowMs: atMs,
    now: () => clock.nowMs,
    set: (ms) => {
      clock.nowMs = ms;
    },
    advance: (ms) => {
      clock.nowMs += ms;
    },
  };
  return clock;
}

export interface FixtureOptions {
  /** Laid over the shipped plans.json (e.g. `{ allowedLatenessMs: 1_500 }`) for `fx.config`. */
  plans?: Partial<Plans>;
  /** Partitions of the usage and commands topics `fx.topics` creates (default 4). */
  partitions?: number;
  /** Where the pinned clock starts (default now to the minute). */
  nowMs?: number;
}

export interface TopicsOptions {
  /** Partitions of the usage and commands topics (default: the fixture's, 4). */
  partitions?: number;
  /** Register the usage, command and ledger subjects (default true; a producer test: false). */
  register?: boolean;
}

export interface Fixture {
  /** The file's own names: id, key prefix, database, topic and group names. */
  iso: Isolation;
  urls: StackUrls;
  /** The engine config of deploy/config (with FixtureOptions.plans laid over the plans). */
  config: EngineConfig;
  /** A kafkajs connection (admin, reading topics back, groups' offsets). */
  conn: KafkaConnection;
  /** The Avro codec, its subjects registered for every topic set `fx.topics` made. */
  codec: AvroCodec;
  /** The file's pinned clock; services use it only when passed `clock: fx.clock.now`. */
  clock: PinnedClock;
  /** The file's key prefix (iso.keyPrefix): every key under it is deleted at the end. */
  keyPrefix: string;
  /** The group of the consumers `fx.startConsumer` starts unless told otherwise. */
  groupId: string;
  /**
   * The file's topic set (`name` for a further one), its usage and commands topics created
   * and the usage, command and ledger subjects registered. The same name answers the same set.
   */
  topics(name?: string, options?: TopicsOptions): Promise<TopicNames>;
  /** The names `fx.topics(name)` creates, without creating anything. */
  topicNames(name?: string): TopicNames;
  /** The prefix of those names: a service process's CF_TOPIC_PREFIX. */
  topicPrefix(name?: string): string;
  /** Records on a topic: the sum of its partitions' high-water marks. */
  topicSize(topic: string): Promise<number>;
  /** A CreditProducer on the file's topics (uncompressed); closed at the end. */
  producer(options?: Partial<ProducerOptions>): Promise<CreditProducer>;
  /** A client of the tests' Redis (cluster or single), connected on first use. */
  readonly redis: RedisClient;
  /** The member store under a key prefix (default the file's), its outbox relayed nowhere. */
  store(keyPrefix?: string): MemberStore;
  /** The member store's read model under a key prefix (default the file's). */
  reader(keyPrefix?: string): MemberReader;
  /** One member as Redis holds it under a key prefix (default the file's). */
  member(userId: string, keyPrefix?: string): Promise<StoredMember>;
  /**
   * A consumer on the file's topics, key prefix and group, test limits, a quiet logger, its
   * group joined before this answers (unless `awaitJoin: false`); stopped at the end.
   */
  startConsumer(
    options?: Partial<ConsumerOptions> & { awaitJoin?: boolean },
  ): Promise<RunningConsumer>;
  /** A history sink on the file's topics into the file's database, a quiet logger. */
  startSink(options?: Partial<SinkOptions>): Promise<RunningSink>;
  /**
   * An API on the file's topics, keys and database, no logger, the admin token ADMIN_TOKEN and
   * no service tokens unless given; closed at the end.
   */
  startApi(options?: Partial<ApiOptions>): Promise<Api>;
  /**
   * rebuildRedis from the file's database, topics, key prefix and consumer group (each one
   * overridable), with the file's config.
   */
  rebuild(options?: Partial<RebuildOptions>): Promise<RebuildSummary>;
  /** A ClickHouse client (no database set, its log off), closed at the end. */
  readonly clickhouse: ClickHouseClient;
  /**
   * fx.clickhouseIn(): a client of the file's database, which a beforeAll this registers creates
   * with `tables` (CREATE TABLE statements, run in it). Call it at the top of the file.
   */
  clickhouseWithTables(...tables: string[]): ClickHouseClient;
  /**
   * The environment of a service process a test starts (consumer, sink: main.ts): the test's
   * own, with the stack's Kafka, registry and Redis (cluster or single) laid over it.
   */
  serviceEnv(): NodeJS.ProcessEnv;
  /** A ClickHouse client whose queries run in `database` (default the file's), closed at the end. */
  clickhouseIn(database?: string): ClickHouseClient;
  /** The file's ClickHouse database name (iso.database); dropped at the end with any `database`. */
  database: string;
  /** Marks a further database as the file's: dropped at the end. */
  ownDatabase(name: string): string;
  /**
   * Every record of a topic (harness readTopic over fx.conn); with `expected`, it waits for them
   * up to timeoutMs (default 30 s) however long the topic stays idle.
   */
  readTopic(topic: string, options?: Parameters<typeof readTopic>[2]): Promise<ReadRecord[]>;
  /** The ledger topic read back, decoded, by user, deduplicated by entry id. */
  ledger(
    topics: TopicNames,
    options?: Parameters<typeof readTopic>[2],
  ): Promise<Map<string, LedgerEntryRecord[]>>;
  /** Waits until a group (default the file's) committed every record of the topics. */
  caughtUp(topics: string[], groupId?: string, timeoutMs?: number): Promise<void>;
  /** Runs `stop` in the afterAll, before the fixture's own clean-up (last added, first run). */
  onCleanup(stop: () => unknown): void;
}

/**
 * The fixture of the test file at `fileUrl` (pass `import.meta.url`); call it at the top of the
 * file, outside any hook: it registers its afterAll there.
 */
export function fixture(fileUrl: string, options: FixtureOptions = {}): Fixture {
  const iso = isolation(fileUrl);
  const urls = stack();
  const config = loadConfig(options.plans);
  const logger = testLogger();
  const conn = connectKafka(urls.kafkaBrokers, `test-${iso.id}`, logger);
  const codec = new AvroCodec(urls.schemaRegistryUrl);
  const topicSets = new Map<string, Promise<TopicNames>>();
  const cleanups: Array<() => unknown> = [];
  const databases = new Set<string>([iso.database]);
  let redis: RedisClient | undefined;
  /** Set once anything of the fixture may have written under the file's key prefix. */
  let keysWritten = false;
  let clickhouse: ClickHouseClient | undefined;
  let clickhouseUsed = false;

  const fx: Fixture = {
    iso,
    urls,
    config,
    conn,
    codec,
    clock: pinnedClock(options.nowMs),
    keyPrefix: iso.keyPrefix,
    groupId: iso.group("consumer"),
    database: iso.database,

    topics(name, topicOptions = {}) {
      const key = name ?? "";
      let set = topicSets.get(key);
      if (set === undefined) {
        const topics = fx.topicNames(name);
        set = (async () => {
          const partitions = topicOptions.partitions ?? options.partitions ?? 4;
          await ensureTopics(conn, [topics.usage, topics.commands], partitions);
          if (topicOptions.register !== false) {
            await codec.register(topics, ["usage", "command", "ledger"]);
          }
          return topics;
        })();
        topicSets.set(key, set);
      }
      return set;
    },

    topicNames: (name) => topicNames(fx.topicPrefix(name)),
    topicPrefix: (name) => (name === undefined ? `t_${iso.id}` : `t_${iso.id}_${name}`),
    async topicSize(topic) {
      const admin = conn.kafka.admin();
      await admin.connect();
      try {
        return (await admin.fetchTopicOffsets(topic)).reduce((n, o) => n + Number(o.high), 0);
      } finally {
        await admin.disconnect();
      }
    },

    async producer(producerOptions = {}) {
      const producer = await CreditProducer.create({
        brokers: urls.kafkaBrokers,
        schemaRegistryUrl: urls.schemaRegistryUrl,
        service: "test-service",
        rateCard: config.rateCard,
        topics: producerOptions.topics ?? (await fx.topics()),
        compression: "none",
        ...producerOptions,
      });
      cleanups.push(() => producer.close());
      return producer;
    },

    get redis() {
      keysWritten = true;
      redis ??= connectTestRedis();
      return redis;
    },
    store: (keyPrefix = iso.keyPrefix) => storeWithoutRelay(fx.redis, keyPrefix),
    reader: (keyPrefix = iso.keyPrefix) => new MemberReader(fx.redis, keySpace(keyPrefix)),
    member: (userId, keyPrefix = iso.keyPrefix) => readMember(fx.redis, keyPrefix, userId),

    async startConsumer({ awaitJoin = true, ...consumerOptions } = {}) {
      const consumer = await startConsumer({
        brokers: urls.kafkaBrokers,
        schemaRegistryUrl: urls.schemaRegistryUrl,
        ...redisTarget(),
        topics: consumerOptions.topics ?? (await fx.topics()),
        keyPrefix: iso.keyPrefix,
        groupId: fx.groupId,
        config,
        logger,
        ...consumerOptions,
        limits: { ...TEST_CONSUMER_LIMITS, ...consumerOptions.limits },
      });
      keysWritten = true;
      cleanups.push(() => consumer.stop());
      if (awaitJoin) await consumer.joined;
      return consumer;
    },

    async startSink(sinkOptions = {}) {
      const database = fx.ownDatabase(sinkOptions.database ?? iso.database);
      const sink = await startSink({
        brokers: urls.kafkaBrokers,
        schemaRegistryUrl: urls.schemaRegistryUrl,
        clickhouseUrl: urls.clickhouseUrl,
        topics: sinkOptions.topics ?? (await fx.topics()),
        groupId: iso.group("sink"),
        rateCard: config.rateCard,
        logger,
        ...sinkOptions,
        database,
      });
      clickhouseUsed = true;
      cleanups.push(() => sink.stop());
      return sink;
    },

    async startApi(apiOptions = {}) {
      const api = await buildApi({
        ...redisTarget(),
        brokers: urls.kafkaBrokers,
        schemaRegistryUrl: urls.schemaRegistryUrl,
        clickhouseUrl: urls.clickhouseUrl,
        clickhouseDatabase: iso.database,
        topics: apiOptions.topics ?? (await fx.topics()),
        keyPrefix: iso.keyPrefix,
        config,
        jwtSecret: TEST_JWT_SECRET,
        serviceTokens: [],
        adminTokens: [{ name: "ops", secret: ADMIN_TOKEN }],
        logger: false,
        ...apiOptions,
      });
      keysWritten = true;
      cleanups.push(() => api.close());
      return api;
    },

    rebuild: (rebuildOptions = {}) =>
      rebuildRedis({
        brokers: urls.kafkaBrokers,
        schemaRegistryUrl: urls.schemaRegistryUrl,
        ...redisTarget(),
        clickhouseUrl: urls.clickhouseUrl,
        database: iso.database,
        topics: fx.topicNames(),
        keyPrefix: iso.keyPrefix,
        consumerGroupId: fx.groupId,
        config,
        ...rebuildOptions,
      }),

    get clickhouse() {
      clickhouseUsed = true;
      clickhouse ??= quietClickHouse({ url: urls.clickhouseUrl });
      return clickhouse;
    },
    clickhouseIn(database = iso.database) {
      const client = quietClickHouse({
        url: urls.clickhouseUrl,
        database: fx.ownDatabase(database),
      });
      clickhouseUsed = true;
      cleanups.push(() => client.close());
      return client;
    },
    clickhouseWithTables(...tables) {
      const client = fx.clickhouseIn();
      beforeAll(async () => {
        await fx.clickhouse.command({ query: `CREATE DATABASE IF NOT EXISTS ${iso.database}` });
        for (const query of tables) await client.command({ query });
      });
      return client;
    },
    serviceEnv: () => ({
      ...process.env,
      KAFKAJS_NO_PARTITIONER_WARNING: "1",
      KAFKA_BROKERS: urls.kafkaBrokers.join(","),
      SCHEMA_REGISTRY_URL: urls.schemaRegistryUrl,
      ...redisEnv(),
    }),
    ownDatabase(name) {
      databases.add(name);
      return name;
    },

    readTopic: (topic, readOptions = {}) =>
      readTopic(conn, topic, {
        ...(readOptions.expected === undefined ? {} : { idleMs: readOptions.timeoutMs ?? 30_000 }),
        ...readOptions,
      }),
    async ledger(topics, readOptions = { idleMs: 2_000 }) {
      return ledgerByUser(codec, await readTopic(conn, topics.ledger, readOptions));
    },
    caughtUp: (topics, groupId = fx.groupId, timeoutMs) =>
      waitCaughtUp(conn, groupId, topics, timeoutMs),

    onCleanup(stop) {
      cleanups.push(stop);
    },
  };

  afterAll(async () => {
    // Services first (last started, first stopped), then what they wrote.
    for (const stop of cleanups.reverse()) {
      await Promise.resolve()
        .then(stop)
        .catch(() => undefined);
    }
    if (keysWritten) {
      await deleteKeysUnder(fx.redis, iso.keyPrefix).catch(() => undefined);
      fx.redis.disconnect();
    }
    if (clickhouseUsed) {
      for (const database of databases) {
        await fx.clickhouse
          .command({ query: `DROP DATABASE IF EXISTS ${database}` })
          .catch(() => undefined);
      }
      await clickhouse?.close();
    }
  });

  return fx;
}
