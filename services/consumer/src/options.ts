// Options of the deduction consumer and its named limits, validated once at start-up (TypeBox):
// a bad limit fails fast naming its field, never in the middle of a batch.

import type { TopicNames } from "@creditflow/contracts";
import type { EngineConfig } from "@creditflow/engine";
import { type Static, Type } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import type { Logger } from "pino";
import { ConsumerError } from "./errors.ts";

export const LimitsSchema = Type.Object(
  {
    /**
     * Most records applied, relayed and committed as one unit; a larger Kafka batch is cut into
     * these. A consumer that is behind gets full fetches (maxBytesPerPartition), so its units are
     * large and a member's many records share one load, apply, encode and write; below this
     * limit a unit takes what the last units' pace allows in a third of sessionTimeoutMs (at
     * most a sixth of rebalanceTimeoutMs; unit-size.ts), so it ends inside the session however
     * loaded the machine is.
     */
    batchRecords: Type.Integer({ minimum: 1, maximum: 200_000, default: 100_000 }),
    /**
     * Members loaded, decoded, applied and written in one round (one Redis pipeline each way).
     * Small enough that a round's objects are garbage before the young generation is collected
     * twice (the consumer bench: 1,000 spent 5.9 s in scavenges, 250 spent 3.9-4.2 s), large
     * enough that the round trips stay few.
     */
    membersPerRound: Type.Integer({ minimum: 1, maximum: 10_000, default: 250 }),
    /** Due members the sweeper takes per pass. */
    sweeperBatch: Type.Integer({ minimum: 1, maximum: 10_000, default: 500 }),
    /** How often the sweeper looks for due members. */
    sweeperIntervalMs: Type.Integer({ minimum: 50, maximum: 60_000, default: 1_000 }),
    /** Reloads of one member after a version conflict, in one batch, before the batch fails. */
    maxCasRetries: Type.Integer({ minimum: 1, maximum: 100, default: 8 }),
    /**
     * Members whose last written state this process keeps in memory (least recently used out),
     * so their next unit needs no load from Redis; 0 turns the cache off.
     */
    cachedMembers: Type.Integer({ minimum: 0, maximum: 10_000_000, default: 200_000 }),
    /** Partitions processed at once by one process (overlaps Redis and Kafka round trips). */
    partitionsConcurrently: Type.Integer({ minimum: 1, maximum: 64, default: 2 }),
    /** Bytes fetched per partition per request (about 80 bytes per usage record). */
    maxBytesPerPartition: Type.Integer({
      minimum: 1024,
      maximum: 64 * 1024 * 1024,
      default: 8 * 1_048_576,
    }),
    /** Bytes fetched per request over all partitions (kafkajs `maxBytes`). */
    maxBytesPerFetch: Type.Integer({
      minimum: 1024,
      maximum: 256 * 1024 * 1024,
      default: 20 * 1_048_576,
    }),
    /** Consumer-group session: a dead process's partitions move after this long. */
    sessionTimeoutMs: Type.Integer({ minimum: 6_000, maximum: 300_000, default: 30_000 }),
    heartbeatIntervalMs: Type.Integer({ minimum: 100, maximum: 10_000, default: 1_000 }),
    /**
     * How long a rebalance waits for the live members to rejoin (the Java client's
     * max.poll.interval.ms). A member in the middle of a unit rejoins when the unit is done; a
     * dead one is dropped after sessionTimeoutMs anyway. Short, it made two consumers of a busy
     * machine drop each other in turn, each rejoin starting a rebalance the other was too slow for.
     */
    rebalanceTimeoutMs: Type.Integer({ minimum: 6_000, maximum: 600_000, default: 60_000 }),
    /**
     * Replicas that must hold a round's member writes (and deadline index writes) before the
     * unit relays or commits anything (Redis WAIT): Redis replication is asynchronous, and a
     * write no replica holds is lost when its master fails over. Default: 1 on a Redis Cluster,
     * 0 on a single Redis (which has no replica to wait for); an explicit value wins.
     */
    minReplicaAcks: Type.Integer({ minimum: 0, maximum: 5 }),
    /** How long WAIT waits for those replicas; then the unit fails and is redone (idempotent). */
    replicaAckTimeoutMs: Type.Integer({ minimum: 10, maximum: 60_000, default: 2_000 }),
  },
  { additionalProperties: false },
);
export type ConsumerLimits = Static<typeof LimitsSchema>;

export const DEFAULT_LIMITS: Omit<ConsumerLimits, "minReplicaAcks"> = {
  batchRecords: 100_000,
  membersPerRound: 250,
  sweeperBatch: 500,
  sweeperIntervalMs: 1_000,
  maxCasRetries: 8,
  cachedMembers: 200_000,
  partitionsConcurrently: 2,
  maxBytesPerPartition: 8 * 1_048_576,
  maxBytesPerFetch: 20 * 1_048_576,
  sessionTimeoutMs: 30_000,
  heartbeatIntervalMs: 1_000,
  rebalanceTimeoutMs: 60_000,
  replicaAckTimeoutMs: 2_000,
};

export interface ConsumerOptions {
  /** host:port of each broker. */
  brokers: string[];
  /** The registry's Confluent-compatible base URL (…/apis/ccompat/v7). */
  schemaRegistryUrl: string;
  /** redis://host:port of a single Redis; or set redisClusterNodes instead. */
  redisUrl?: string;
  /** host:port of some nodes of a Redis Cluster (parseClusterNodes); set means cluster mode. */
  redisClusterNodes?: string[];
  topics: TopicNames;
  /** Prefix of every Redis key (`cf:`); tests pass their own. */
  keyPrefix: string;
  groupId: string;
  /** Rate card and plans (makeConfig). */
  config: EngineConfig;
  limits?: Partial<ConsumerLimits>;
  /** Serve /metrics and /healthz on this port (0: any free port; undefined: no server). */
  metricsPort?: number;
  /** Run the deadline sweeper (default true). */
  sweeper?: boolean;
  /** Processing clock, epoch ms (default Date.now); tests pin it. */
  clock?: () => number;
  logger?: Logger;
  clientId?: string;
  /**
   * Test hook for crash tests: SIGKILL this process at `stage` of its `unit`-th unit (1-based).
   * Never set in production; main.ts reads it from CF_FAULT_KILL=<unit>:<stage>.
   */
  faultKill?: { unit: number; stage: FaultStage };
  /**
   * Test hook for slow-machine tests: the `unit`-th unit of this process waits `ms` after its
   * write, before its relay and commit. Never set in production.
   */
  faultPause?: { unit: number; ms: number };
}

/** Points between the steps of a unit where a crash test may kill the process. */
export const FAULT_STAGES = [
  "after_write",
  "after_relay",
  "after_release",
  "after_commit",
] as const;
export type FaultStage = (typeof FAULT_STAGES)[number];

const checkLimits = TypeCompiler.Compile(LimitsSchema);

/**
 * The limits with their defaults, checked; `cluster` says whether Redis is a cluster (the default
 * of minReplicaAcks).
 */
export function resolveLimits(
  partial: Partial<ConsumerLimits> | undefined,
  cluster = false,
): ConsumerLimits {
  const limits = { minReplicaAcks: cluster ? 1 : 0, ...DEFAULT_LIMITS, ...partial };
  const first = checkLimits.Errors(limits).First();
  if (first) {
    throw new ConsumerError(
      "invalid_options",
      `limits.${first.path.slice(1)}: ${first.message.toLowerCase()}`,
    );
  }
  if (limits.heartbeatIntervalMs * 3 > limits.sessionTimeoutMs) {
    throw new ConsumerError(
      "invalid_options",
      "limits.heartbeatIntervalMs: must be at most a third of limits.sessionTimeoutMs",
    );
  }
  if (limits.rebalanceTimeoutMs < limits.sessionTimeoutMs) {
    throw new ConsumerError(
      "invalid_options",
      "limits.rebalanceTimeoutMs: must be at least limits.sessionTimeoutMs",
    );
  }
  return limits;
}
