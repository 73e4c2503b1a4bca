// The chaos run's fault schedule: a deterministic list of (time, fault) drawn from the seed and
// scaled with the run's length, so one seed is one run. Pure: no clock, no I/O.
import { type Random, seededRandom } from "@creditflow/loadgen";

export type FaultKind =
  | "consumer-kill"
  | "sink-kill"
  | "broker-restart"
  | "clickhouse-outage"
  | "redis-restart"
  | "redis-flush-rebuild";

export type Fault =
  /** SIGKILL consumer process `target`, start a new one after restartAfterMs. */
  | { atMs: number; kind: "consumer-kill"; target: number; restartAfterMs: number }
  /** SIGKILL the history sink, start a new one after restartAfterMs. */
  | { atMs: number; kind: "sink-kill"; restartAfterMs: number }
  /** SIGKILL Kafka broker `broker` (1-based), start it again after downMs, wait until it rejoined. */
  | { atMs: number; kind: "broker-restart"; broker: number; downMs: number }
  /** Stop ClickHouse for downMs, then start it. */
  | { atMs: number; kind: "clickhouse-outage"; downMs: number }
  /** Graceful Redis SHUTDOWN (AOF flushed), start again after downMs. */
  | { atMs: number; kind: "redis-restart"; downMs: number }
  /** Kill one consumer, stop the others, wait for history, FLUSHALL, rebuild, start consumers. */
  | { atMs: number; kind: "redis-flush-rebuild" };

/** Faults that change the stack itself: run one after another, never overlapping. */
export const EPISODE_KINDS: ReadonlySet<FaultKind> = new Set([
  "broker-restart",
  "clickhouse-outage",
  "redis-restart",
  "redis-flush-rebuild",
]);

export interface ScheduleOptions {
  /** Length of the load, minutes (> 0). */
  minutes: number;
  seed: number;
  /** Consumer processes in the group (>= 1). */
  consumers: number;
  /** Kafka brokers (>= 2: one is restarted while the others keep the quorum). */
  brokers: number;
}

/** How many faults of each kind a run of `minutes` gets (every kind at least once). */
export interface FaultCounts {
  consumerKills: number;
  sinkKills: number;
  brokerRestarts: number;
  clickhouseOutageMs: number;
  redisRestarts: number;
  flushRebuilds: number;
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
  };
}

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
  shuffle(random, episodes);

  const faults: Fault[] = [];
  const windowStart = durationMs * WINDOW_START;
  const slotMs = (durationMs * (WINDOW_END - WINDOW_START)) / episodes.length;
  episodes.forEach((e, i) => {
    // An outage fits its slot; the rest of the slot is where its start may fall.
    const busyMs = e.kind === "clickhouse-outage" ? e.downMs : 0;
    const slack = Math.max(0, slotMs - busyMs) * 0.5;
    faults.push({ ...e, atMs: Math.round(windowStart + i * slotMs + random() * slack) });
  });
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
      return `restart Redis (SHUTDOWN, AOF flushed), down ${f.downMs} ms`;
    case "redis-flush-rebuild":
      return "SIGKILL a consumer, stop the others, FLUSHALL Redis, rebuild from the ledger, start consumers";
  }
}
