// The chaos run's fault schedule: a deterministic list of (time, fault) drawn from the seed and
// scaled with the run's length, so one seed is one run. Pure: no clock, no I/O.
import { type Random, seededRandom } from "@creditflow/loadgen";

/** The faults of every run. */
export type BaseFaultKind =
  | "consumer-kill"
  | "sink-kill"
  | "broker-restart"
  | "clickhouse-outage"
  | "redis-restart"
  | "redis-flush-rebuild";
/** The faults only a run on a Redis Cluster gets (--redis-cluster). */
export type ClusterFaultKind = "redis-master-kill" | "redis-reshard";
export type FaultKind = BaseFaultKind | ClusterFaultKind;

/**
 * The Redis Cluster's masters as the schedule names them: shard k is the master serving slot
 * SHARD_SLOTS[k] when the fault is carried out (the middle of the k-th third of the slots, as
 * `redis-cli --cluster create` assigns them). A failover or a reshard changes which node that is,
 * so the harness looks it up at the fault's instant; a reshard moves a master's lowest slots
 * first (redis-cli's choice) and moves fewer than the 2,730 below each of these, so no reshard of
 * a run moves one of them.
 */
export const SHARD_SLOTS = [2_730, 8_191, 13_653] as const;
export const CLUSTER_SHARDS = SHARD_SLOTS.length;

export type Fault =
  /** SIGKILL consumer process `target`, start a new one after restartAfterMs. */
  | { atMs: number; kind: "consumer-kill"; target: number; restartAfterMs: number }
  /** SIGKILL the history sink, start a new one after restartAfterMs. */
  | { atMs: number; kind: "sink-kill"; restartAfterMs: number }
  /** SIGKILL Kafka broker `broker` (1-based), start it again after downMs, wait until it rejoined. */
  | { atMs: number; kind: "broker-restart"; broker: number; downMs: number }
  /** Stop ClickHouse for downMs, then start it. */
  | { atMs: number; kind: "clickhouse-outage"; downMs: number }
  /**
   * Graceful Redis SHUTDOWN (AOF flushed), start again after downMs. On a cluster: the master of
   * `shard` (set only then).
   */
  | { atMs: number; kind: "redis-restart"; downMs: number; shard?: number }
  /** Kill one consumer, stop the others, wait for history, FLUSHALL, rebuild, start consumers. */
  | { atMs: number; kind: "redis-flush-rebuild" }
  /**
   * SIGKILL the cluster master of `shard`, wait until its replica is promoted, start the killed
   * node again after restartAfterMs (it rejoins as a replica), wait until the cluster is healthy.
   */
  | { atMs: number; kind: "redis-master-kill"; shard: number; restartAfterMs: number }
  /** Move `slots` slots, with their keys, from the master of shard `from` to that of `to`. */
  | { atMs: number; kind: "redis-reshard"; from: number; to: number; slots: number };

/** Faults that change the stack itself: run one after another, never overlapping. */
export const EPISODE_KINDS: ReadonlySet<FaultKind> = new Set([
  "broker-restart",
  "clickhouse-outage",
  "redis-restart",
  "redis-flush-rebuild",
  "redis-master-kill",
  "redis-reshard",
]);

export interface ScheduleOptions {
  /** Length of the load, minutes (> 0). */
  minutes: number;
  seed: number;
  /** Consumer processes in the group (>= 1). */
  consumers: number;
  /** Kafka brokers (>= 2: one is restarted while the others keep the quorum). */
  brokers: number;
  /**
   * The consumers' Redis is a cluster of CLUSTER_SHARDS masters with a replica each: its faults
   * (master kills, a reshard) join the episodes, and the Redis restart takes a master. Off, the
   * schedule of a seed is the same as it always was.
   */
  redisCluster?: boolean;
}

/** How many faults of each kind a run of `minutes` gets (every kind at least once). */
export interface FaultCounts {
  consumerKills: number;
  sinkKills: number;
  brokerRestarts: number;
  clickhouseOutageMs: number;
  redisRestarts: number;
  flushRebuilds: number;
  /** Only with redisCluster. */
  masterKills: number;
  reshards: number;
}

/** The named scale of a run: 10 minutes give 60 consumer kills, 3 broker restarts, a 60 s outage. */
export function faultCounts(minutes: number): FaultCounts {
  if (!(minutes > 0)) throw new RangeError(`minutes: must be > 0 (got ${minutes})`);
  return {
    consumerKills: Math.max(8, Math.ceil(6 * minutes)),
    sinkKills: Math.max(2, Math.ceil(minutes)),
    brokerRestarts: Math.max(1, Math.round(minutes / 4)),
    clickhouseOutageMs: Math.round(Math.min(60, Math.max(15, 8 * minutes)) * 1000),
    redisRestarts: Math.max(1, Math.floor(minutes / 4)),
    flushRebuilds: 1,
    masterKills: Math.max(1, Math.floor(minutes / 3)),
    reshards: Math.max(1, Math.floor(minutes / 10)),
  };
}

/**
 * What the slot spacing counts a master kill as taking besides its restart delay: the replica's
 * promotion (the cluster's 5 s node timeout, then the election) and the old master's return.
 */
const MASTER_KILL_BUSY_MS = 12_000;
/** ... and a reshard (slots moved one by one with their keys, under load). */
const RESHARD_BUSY_MS = 10_000;

/** Faults happen inside this share of the load, so recoveries finish while it still runs. */
const WINDOW_START = 0.1;
const WINDOW_END = 0.85;
/** Kills are spread over a wider share of the load. */
const KILL_START = 0.05;
const KILL_END = 0.95;

const between = (random: Random, min: number, max: number) =>
  Math.round(min + random() * (max - min));

function shuffle<T>(random: Random, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/**
 * The schedule of one run, sorted by time. Episodes (broker, ClickHouse, Redis, flush) each get
 * their own slot of the window, in a seeded order, at a seeded instant inside it; kills fall at
 * seeded instants over the whole load.
 */
export function buildSchedule(o: ScheduleOptions): Fault[] {
  if (!Number.isInteger(o.consumers) || o.consumers < 1)
    throw new RangeError(`consumers: an integer >= 1 (got ${o.consumers})`);
  if (!Number.isInteger(o.brokers) || o.brokers < 2)
    throw new RangeError(`brokers: an integer >= 2 (got ${o.brokers})`);
  const counts = faultCounts(o.minutes);
  const random = seededRandom(o.seed ^ 0xc4a0_5001);
  const durationMs = o.minutes * 60_000;

  // Episodes first get their kind and parameters; their instants are set below.
  const episodes: Fault[] = [];
  for (let i = 0; i < counts.brokerRestarts; i++) {
    episodes.push({
      atMs: 0,
      kind: "broker-restart",
      broker: 1 + Math.floor(random() * o.brokers),
      downMs: between(random, 2_000, 8_000),
    });
  }
  episodes.push({ atMs: 0, kind: "clickhouse-outage", downMs: counts.clickhouseOutageMs });
  for (let i = 0; i < counts.redisRestarts; i++) {
    episodes.push({ atMs: 0, kind: "redis-restart", downMs: between(random, 500, 3_000) });
  }
  for (let i = 0; i < counts.flushRebuilds; i++)
    episodes.push({ atMs: 0, kind: "redis-flush-rebuild" });
  if (o.redisCluster === true) episodes.push(...clusterEpisodes(o.seed, counts, episodes));
  shuffle(random, episodes);

  const faults: Fault[] = [];
  const windowStart = durationMs * WINDOW_START;
  const windowMs = durationMs * (WINDOW_END - WINDOW_START);
  if (o.redisCluster === true) {
    // The flush stops the consumers until history has caught up (minutes at 5,000 events/s) and
    // the episodes run one after another: anywhere but last it would push the master kills and
    // the reshard past the load, onto consumers with nothing new to read.
    episodes.sort(
      (a, b) => Number(a.kind === "redis-flush-rebuild") - Number(b.kind === "redis-flush-rebuild"),
    );
    // More episodes than the window has room for at equal slots: each gets the time it takes
    // and an equal share of the rest, its start anywhere in the first half of that share.
    const busy = episodes.map(busyMsOf);
    const shareMs = Math.max(0, windowMs - busy.reduce((a, b) => a + b, 0)) / episodes.length;
    let slotStart = windowStart;
    episodes.forEach((e, i) => {
      faults.push({ ...e, atMs: Math.round(slotStart + random() * shareMs * 0.5) });
      slotStart += busy[i]! + shareMs;
    });
  } else {
    const slotMs = windowMs / episodes.length;
    episodes.forEach((e, i) => {
      // An outage fits its slot; the rest of the slot is where its start may fall.
      const busyMs = e.kind === "clickhouse-outage" ? e.downMs : 0;
      const slack = Math.max(0, slotMs - busyMs) * 0.5;
      faults.push({ ...e, atMs: Math.round(windowStart + i * slotMs + random() * slack) });
    });
  }
  for (let i = 0; i < counts.consumerKills; i++) {
    faults.push({
      kind: "consumer-kill",
      atMs: between(random, durationMs * KILL_START, durationMs * KILL_END),
      target: Math.floor(random() * o.consumers),
      restartAfterMs: between(random, 200, 3_000),
    });
  }
  for (let i = 0; i < counts.sinkKills; i++) {
    faults.push({
      kind: "sink-kill",
      atMs: between(random, durationMs * KILL_START, durationMs * KILL_END),
      restartAfterMs: between(random, 200, 3_000),
    });
  }
  return faults.sort((a, b) => a.atMs - b.atMs || a.kind.localeCompare(b.kind));
}

/**
 * The cluster's episodes, drawn from a stream of their own so the rest of the schedule keeps its
 * seed's draws: master kills going round the shards in a seeded order (three kills, three
 * different masters), each restarted after 3 to 10 s; reshards of 300 to 1,500 slots between two
 * different shards. The Redis restarts already drawn take a seeded master each.
 */
function clusterEpisodes(seed: number, counts: FaultCounts, episodes: Fault[]): Fault[] {
  const random = seededRandom(seed ^ 0x7ed1_5c1a);
  for (const e of episodes) {
    if (e.kind === "redis-restart") e.shard = Math.floor(random() * CLUSTER_SHARDS);
  }
  const order = shuffle(
    random,
    Array.from({ length: CLUSTER_SHARDS }, (_, k) => k),
  );
  const out: Fault[] = [];
  for (let i = 0; i < counts.masterKills; i++) {
    out.push({
      atMs: 0,
      kind: "redis-master-kill",
      shard: order[i % CLUSTER_SHARDS]!,
      restartAfterMs: between(random, 3_000, 10_000),
    });
  }
  for (let i = 0; i < counts.reshards; i++) {
    const from = order[i % CLUSTER_SHARDS]!;
    out.push({
      atMs: 0,
      kind: "redis-reshard",
      from,
      to: order[(i + 1) % CLUSTER_SHARDS]!,
      slots: between(random, 300, 1_500),
    });
  }
  return out;
}

/** How long an episode keeps the stack busy, as the cluster schedule spaces them. */
function busyMsOf(e: Fault): number {
  switch (e.kind) {
    case "clickhouse-outage":
      return e.downMs;
    case "redis-master-kill":
      return e.restartAfterMs + MASTER_KILL_BUSY_MS;
    case "redis-reshard":
      return RESHARD_BUSY_MS;
    default:
      return 0;
  }
}

/** One line per fault, for the log and for comparing two schedules. */
export function describeFault(f: Fault): string {
  switch (f.kind) {
    case "consumer-kill":
      return `SIGKILL consumer ${f.target}, restart after ${f.restartAfterMs} ms`;
    case "sink-kill":
      return `SIGKILL history sink, restart after ${f.restartAfterMs} ms`;
    case "broker-restart":
      return `SIGKILL Kafka broker ${f.broker}, start again after ${f.downMs} ms`;
    case "clickhouse-outage":
      return `stop ClickHouse for ${f.downMs} ms`;
    case "redis-restart":
      return f.shard === undefined
        ? `restart Redis (SHUTDOWN, AOF flushed), down ${f.downMs} ms`
        : `restart the Redis master of shard ${f.shard} (SHUTDOWN, AOF flushed), down ${f.downMs} ms`;
    case "redis-flush-rebuild":
      return "SIGKILL a consumer, stop the others, FLUSHALL Redis, rebuild from the ledger, start consumers";
    case "redis-master-kill":
      return `SIGKILL the Redis master of shard ${f.shard}, its replica takes over; restart it after ${f.restartAfterMs} ms (rejoins as a replica)`;
    case "redis-reshard":
      return `reshard ${f.slots} slots from the Redis master of shard ${f.from} to that of shard ${f.to}`;
  }
}
