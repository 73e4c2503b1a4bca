// The history sink: consumes the ledger, usage, commands and dead-letter topics and writes
// ClickHouse's raw tables in batches bounded by size and age. It never blocks debiting (the
// consumer does not depend on it); when ClickHouse is down it keeps its batch, retries with
// backoff, and catches up when ClickHouse is back.
//
// Flush order, and why: (1) drop ids ClickHouse already holds, (2) insert with a deduplication
// token, (3) only then commit the Kafka offsets. A crash before (3) re-reads the records;
// step (1) then finds them stored and skips them, so raw tables and the rollups fed by their
// materialized views see each id once. ReplacingMergeTree on the id is the last safety net.

import { createHash } from "node:crypto";
import { type ClickHouseClient, ClickHouseLogLevel, createClient } from "@clickhouse/client";
import type {
  CreditCommandRecord,
  LedgerEntryRecord,
  TopicNames,
  UsageEventRecord,
} from "@creditflow/contracts";
import type { RateCard } from "@creditflow/engine";
import { AvroCodec, connectKafka, type RecordKind, rejoinErrorOf } from "@creditflow/kafka";
import type { Consumer } from "kafkajs";
import type { Logger } from "pino";
import { migrate } from "./migrate.ts";
import {
  type DeadLetterRow,
  deadLetterRow,
  type GrantRow,
  grantRow,
  type LedgerRow,
  ledgerRow,
  type UsageRow,
  usageRow,
} from "./rows.ts";

/** Commit refusals that mean "this process no longer owns the partition" (kafkajs error types). */
const REBALANCE_ERRORS = new Set([
  "REBALANCE_IN_PROGRESS",
  "UNKNOWN_MEMBER_ID",
  "ILLEGAL_GENERATION",
  "FENCED_INSTANCE_ID",
]);

export interface SinkLimits {
  /** Rows buffered before a flush. */
  maxBatchRows: number;
  /** Age of the oldest buffered row before a flush. */
  maxBatchAgeMs: number;
  /** First and longest wait between retries while ClickHouse fails. */
  retryInitialMs: number;
  retryMaxMs: number;
}

export const DEFAULT_SINK_LIMITS: SinkLimits = {
  maxBatchRows: 5_000,
  maxBatchAgeMs: 1_000,
  retryInitialMs: 200,
  retryMaxMs: 5_000,
};

export interface SinkOptions {
  brokers: string[];
  schemaRegistryUrl: string;
  clickhouseUrl: string;
  database: string;
  topics: TopicNames;
  groupId: string;
  rateCard: RateCard;
  logger: Logger;
  limits?: Partial<SinkLimits>;
}

export interface SinkStats {
  rowsWritten: number;
  rowsSkippedAsDuplicates: number;
  flushes: number;
  failedAttempts: number;
  lastFlushAtMs: number | null;
}

export interface RunningSink {
  stats: SinkStats;
  /** Flush what is buffered, commit, disconnect. */
  stop(): Promise<void>;
}

function checkLimits(l: SinkLimits): void {
  const bad = (field: string, why: string) => new Error(`sink limits.${field}: ${why}`);
  if (!Number.isInteger(l.maxBatchRows) || l.maxBatchRows < 1 || l.maxBatchRows > 100_000) {
    throw bad("maxBatchRows", "an integer from 1 to 100000");
  }
  if (!Number.isInteger(l.maxBatchAgeMs) || l.maxBatchAgeMs < 10 || l.maxBatchAgeMs > 300_000) {
    throw bad("maxBatchAgeMs", "an integer from 10 to 300000 (history may lag at most 5 minutes)");
  }
  if (!Number.isInteger(l.retryInitialMs) || l.retryInitialMs < 1)
    throw bad("retryInitialMs", "an integer >= 1");
  if (!Number.isInteger(l.retryMaxMs) || l.retryMaxMs < l.retryInitialMs) {
    throw bad("retryMaxMs", "an integer >= retryInitialMs");
  }
}

/** A SQL string literal; ids reach here validated, but quote them properly all the same. */
function sqlString(s: string): string {
  return `'${s.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

class Batch {
  ledger: LedgerRow[] = [];
  usage: UsageRow[] = [];
  grants: GrantRow[] = [];
  deadLetters: DeadLetterRow[] = [];
  /** Next offset to commit per topic and partition. */
  offsets = new Map<string, { topic: string; partition: number; offset: string }>();
  startedAtMs: number | null = null;

  get rows(): number {
    return this.ledger.length + this.usage.length + this.grants.length + this.deadLetters.length;
  }

  advance(topic: string, partition: number, offset: string): void {
    this.offsets.set(`${topic}:${partition}`, {
      topic,
      partition,
      offset: (BigInt(offset) + 1n).toString(),
    });
    this.startedAtMs ??= Date.now();
  }
}

/** Unique by key, first occurrence kept. */
function uniqueBy<T>(rows: T[], key: (row: T) => string): T[] {
  const seen = new Set<string>();
  return rows.filter((r) => {
    const k = key(r);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export class HistoryWriter {
  private readonly client: ClickHouseClient;
  private readonly stats: SinkStats;

  constructor(client: ClickHouseClient, stats: SinkStats) {
    this.client = client;
    this.stats = stats;
  }

  /** Insert the rows whose ids are not stored yet (ids unique per member). */
  async write<T extends object>(
    table: string,
    idColumn: keyof T & string,
    rows: T[],
  ): Promise<void> {
    const unique = uniqueBy(
      rows,
      (r) => `${(r as Record<string, unknown>).user_id}|${r[idColumn]}`,
    );
    if (unique.length === 0) return;
    const users = [...new Set(unique.map((r) => String((r as Record<string, unknown>).user_id)))];
    const ids = unique.map((r) => String(r[idColumn]));
    const existing = await this.client.query({
      query: `SELECT ${idColumn} AS id FROM ${table}
              WHERE user_id IN (${users.map(sqlString).join(",")})
                AND ${idColumn} IN (${ids.map(sqlString).join(",")})`,
      format: "JSONEachRow",
    });
    const stored = new Set((await existing.json<{ id: string }>()).map((r) => r.id));
    const fresh = unique.filter((r) => !stored.has(String(r[idColumn])));
    this.stats.rowsSkippedAsDuplicates += rows.length - fresh.length;
    if (fresh.length === 0) return;
    const token = createHash("sha256")
      .update(table)
      .update(fresh.map((r) => String(r[idColumn])).join("\n"))
      .digest("hex");
    await this.client.insert({
      table,
      values: fresh,
      format: "JSONEachRow",
      clickhouse_settings: {
        insert_deduplication_token: token,
        deduplicate_blocks_in_dependent_materialized_views: 1,
      },
    });
    this.stats.rowsWritten += fresh.length;
  }

  /** Dead letters have no id of their own: ReplacingMergeTree on the source position dedups them. */
  async writeDeadLetters(rows: DeadLetterRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.client.insert({ table: "dead_letters", values: rows, format: "JSONEachRow" });
    this.stats.rowsWritten += rows.length;
  }
}

const kindOfTopic = (topics: TopicNames, topic: string): RecordKind | "dead" | null => {
  if (topic === topics.ledger) return "ledger";
  if (topic === topics.usage) return "usage";
  if (topic === topics.commands) return "command";
  if (topic === topics.deadLetters) return "dead";
  return null;
};

export async function startSink(options: SinkOptions): Promise<RunningSink> {
  const limits = { ...DEFAULT_SINK_LIMITS, ...options.limits };
  checkLimits(limits);
  const log = options.logger;
  const stats: SinkStats = {
    rowsWritten: 0,
    rowsSkippedAsDuplicates: 0,
    flushes: 0,
    failedAttempts: 0,
    lastFlushAtMs: null,
  };
  let running = true;

  // ClickHouse may be down at start: wait for it like for any flush.
  await retrying(
    log,
    limits,
    stats,
    () => running,
    "migrate",
    () => migrate(options.clickhouseUrl, options.database),
  );
  // Failures are logged once by the retry loop (pino), not again by the client.
  const client = createClient({
    url: options.clickhouseUrl,
    database: options.database,
    request_timeout: 30_000,
    log: { level: ClickHouseLogLevel.OFF },
  });
  const writer = new HistoryWriter(client, stats);
  const codec = new AvroCodec(options.schemaRegistryUrl);
  const conn = connectKafka(options.brokers, `creditflow-history-${options.groupId}`, log);
  const consumer: Consumer = conn.kafka.consumer({
    groupId: options.groupId,
    sessionTimeout: 30_000,
    heartbeatInterval: 3_000,
    maxWaitTimeInMs: 250,
  });

  let batch = new Batch();
  let flushing: Promise<void> = Promise.resolve();
  let commitError: unknown = null;

  async function flushNow(heartbeat?: () => Promise<void>): Promise<void> {
    const b = batch;
    batch = new Batch();
    if (b.rows === 0 && b.offsets.size === 0) return;
    await retrying(
      log,
      limits,
      stats,
      () => running,
      "flush",
      async () => {
        await heartbeat?.().catch(() => undefined);
        await writer.write("ledger_entries", "entry_id", b.ledger);
        await writer.write("usage_events", "event_id", b.usage);
        await writer.write("grant_commands", "grant_id", b.grants);
        await writer.writeDeadLetters(b.deadLetters);
      },
    );
    stats.flushes++;
    stats.lastFlushAtMs = Date.now();
    try {
      await consumer.commitOffsets([...b.offsets.values()]);
    } catch (error) {
      // Lost the partition in a rebalance: its new owner re-reads and finds the rows stored.
      log.warn(
        { err: error },
        "offset commit refused after flush; rows are stored, the next owner skips them",
      );
      // Anything else is thrown from the next batch. The group coordinator moved (a broker
      // restart, Kafka's periodic preferred-leader election): kafkajs's commit retries end in a
      // wrapped NOT_COORDINATOR_FOR_GROUP, thrown unwrapped so that kafkajs rejoins at once and
      // looks the coordinator up again (wrapped, it kept asking the old one for minutes). The
      // records since the last commit are re-read and skipped as stored.
      const groupError = rejoinErrorOf(error);
      const type = (groupError as { type?: string } | null)?.type ?? "";
      if (!REBALANCE_ERRORS.has(type)) commitError = groupError ?? error;
    }
  }

  /** Flushes run one after another. */
  function flush(heartbeat?: () => Promise<void>): Promise<void> {
    flushing = flushing.then(() => flushNow(heartbeat));
    return flushing;
  }

  const ageTimer = setInterval(
    () => {
      if (batch.startedAtMs !== null && Date.now() - batch.startedAtMs >= limits.maxBatchAgeMs) {
        void flush().catch((error: unknown) => log.error({ err: error }, "flush failed"));
      }
    },
    Math.max(10, Math.floor(limits.maxBatchAgeMs / 4)),
  );

  await consumer.connect();
  await consumer.subscribe({
    topics: [
      options.topics.ledger,
      options.topics.usage,
      options.topics.commands,
      options.topics.deadLetters,
    ],
    fromBeginning: true,
  });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: true,
    eachBatch: async ({ batch: kb, heartbeat }) => {
      if (commitError !== null) {
        const error = commitError;
        commitError = null;
        throw error;
      }
      const kind = kindOfTopic(options.topics, kb.topic);
      for (const m of kb.messages) {
        const at = { partition: kb.partition, offset: Number(m.offset) };
        if (kind === "dead") {
          const headers: Record<string, string | undefined> = {};
          for (const [k, v] of Object.entries(m.headers ?? {})) headers[k] = v?.toString();
          batch.deadLetters.push(deadLetterRow(headers, m.value, Number(m.timestamp), at));
        } else if (kind !== null) {
          const decoded = await codec.decode(kind, m.value);
          if (decoded.ok) {
            if (kind === "ledger")
              batch.ledger.push(ledgerRow(decoded.value as LedgerEntryRecord, at));
            else if (kind === "usage") {
              const row = usageRow(decoded.value as UsageEventRecord, at, options.rateCard);
              if (row) batch.usage.push(row);
            } else {
              const row = grantRow(decoded.value as CreditCommandRecord);
              if (row) batch.grants.push(row);
            }
          }
          // Undecodable usage and commands are the consumer's to dead-letter; history skips them.
        }
        batch.advance(kb.topic, kb.partition, m.offset);
        if (batch.rows >= limits.maxBatchRows) await flush(heartbeat);
      }
      await heartbeat();
    },
  });

  return {
    stats,
    async stop() {
      clearInterval(ageTimer);
      await consumer.stop();
      await flush();
      running = false;
      await consumer.disconnect();
      await client.close();
    },
  };
}

/** Run `work` until it succeeds or the sink stops, waiting longer after each failure. */
async function retrying(
  log: Logger,
  limits: SinkLimits,
  stats: SinkStats,
  isRunning: () => boolean,
  what: string,
  work: () => Promise<unknown>,
): Promise<void> {
  let waitMs = limits.retryInitialMs;
  for (;;) {
    try {
      await work();
      return;
    } catch (error) {
      stats.failedAttempts++;
      if (!isRunning()) throw error;
      log.warn({ err: error, retryInMs: waitMs }, `${what} failed; retrying`);
      await new Promise((r) => setTimeout(r, waitMs));
      waitMs = Math.min(limits.retryMaxMs, waitMs * 2);
    }
  }
}
