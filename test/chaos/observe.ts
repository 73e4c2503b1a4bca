// What the chaos harness reads from the running system: consumer-group lag, Redis outboxes and
// due deadlines (to know when everything drained), and at the end the full usage and ledger
// topics, every member in Redis and the history in ClickHouse, as the plain data the invariants
// take. Topics are read with a throwaway group up to the end offsets taken before reading.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "@clickhouse/client";
import type { LedgerEntryRecord, TopicNames, UsageEventRecord } from "@creditflow/contracts";
import { type Feature, priceUsage, type RateCard } from "@creditflow/engine";
import { type Admin, AvroCodec, type KafkaConnection, readUpTo } from "@creditflow/kafka";
import {
  connectRedis,
  keySpace,
  MemberReader,
  type RedisClient,
  type RedisTarget,
} from "@creditflow/member-store";
import { groupLag } from "../../services/consumer/testing/harness.ts";
import type {
  HistoryLedgerRow,
  LateDuplicateFact,
  LedgerCopy,
  LedgerFact,
  StoredMember,
  UsageFact,
} from "./invariants.ts";

/** One copy of each repeated string (member ids, kinds): millions of records, few distinct values. */
export class Interner {
  private readonly seen = new Map<string, string>();
  of(s: string): string {
    const found = this.seen.get(s);
    if (found !== undefined) return found;
    this.seen.set(s, s);
    return s;
  }
}
const names = new Interner();

/**
 * Admin questions to a cluster whose brokers come and go. kafkajs' admin keeps stale metadata
 * after a broker restart or a leader move (NOT_LEADER_FOR_PARTITION, connection refused) and does
 * not refresh it itself: on an error the probe drops its client, makes a new one and asks again.
 */
export class KafkaProbe {
  private readonly conn: KafkaConnection;
  private admin: Admin | null = null;
  /** Attempts of one question, a second apart, before its error is the caller's. */
  static readonly ATTEMPTS = 60;

  constructor(conn: KafkaConnection) {
    this.conn = conn;
  }

  private async ask<T>(question: (admin: Admin) => Promise<T>): Promise<T> {
    let last: unknown = null;
    for (let attempt = 0; attempt < KafkaProbe.ATTEMPTS; attempt++) {
      try {
        if (this.admin === null) {
          const admin = this.conn.kafka.admin();
          await admin.connect();
          this.admin = admin;
        }
        return await question(this.admin);
      } catch (error) {
        last = error;
        await this.close();
        await sleep(1_000);
      }
    }
    throw new Error(`Kafka did not answer in ${KafkaProbe.ATTEMPTS} attempts`, { cause: last });
  }

  async close(): Promise<void> {
    const admin = this.admin;
    this.admin = null;
    await admin?.disconnect().catch(() => undefined);
  }

  /** Records of the group not yet committed, over the topics' partitions. */
  groupLag(groupId: string, topics: string[]): Promise<number> {
    return this.ask((admin) => groupLag(admin, groupId, topics));
  }

  /** Records currently on a topic (high - low over partitions). */
  topicSize(topic: string): Promise<number> {
    return this.ask(async (admin) => {
      const ends = await admin.fetchTopicOffsets(topic);
      return ends.reduce((s, e) => s + Number(e.high) - Number(e.low), 0);
    });
  }

  /** The last offset of each non-empty partition. */
  lastOffsets(topic: string): Promise<Map<number, bigint>> {
    return this.ask(async (admin) => {
      const out = new Map<number, bigint>();
      for (const e of await admin.fetchTopicOffsets(topic)) {
        if (BigInt(e.high) > BigInt(e.low)) out.set(e.partition, BigInt(e.high) - 1n);
      }
      return out;
    });
  }

  /** Partitions of the topics with fewer than `replicas` in sync. */
  outOfSync(topics: string[], replicas: number): Promise<number> {
    return this.ask(async (admin) => {
      const { topics: meta } = await admin.fetchTopicMetadata({ topics });
      let behind = 0;
      for (const t of meta) for (const p of t.partitions) if (p.isr.length < replicas) behind++;
      return behind;
    });
  }

  /** Waits until every partition of the topics has all `replicas` in sync again. */
  async waitInSync(topics: string[], replicas: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let behind = -1;
    while (Date.now() < deadline) {
      behind = await this.outOfSync(topics, replicas);
      if (behind === 0) return;
      await sleep(500);
    }
    throw new Error(`${behind} partitions still out of sync after ${timeoutMs} ms`);
  }
}

export interface RedisProgress {
  /** Writes whose ledger entries are in an outbox, not yet relayed (see outboxLengths). */
  outboxWrites: number;
  /** Members whose next deadline passed more than graceMs ago (the sweeper is behind). */
  dueMembers: number;
}

/**
 * Outbox writes of every member (each holds one write's ledger entries), read through the member
 * store's read model. Zero once everything is relayed.
 */
async function outboxLengths(reader: MemberReader): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const userIds of reader.memberIds()) {
    for (const [user, n] of await reader.outboxWrites(userIds)) out.set(user, n);
  }
  return out;
}

export async function redisProgress(
  redis: RedisClient,
  keyPrefix: string,
  nowMs: number,
  graceMs: number,
): Promise<RedisProgress> {
  const reader = new MemberReader(redis, keySpace(keyPrefix));
  let outboxWrites = 0;
  for (const n of (await outboxLengths(reader)).values()) outboxWrites += n;
  const dueMembers = await reader.dueCount(nowMs - graceMs);
  return { outboxWrites, dueMembers };
}

/** Records decoded between two heartbeats while a topic is read. */
const READ_CHUNK = 2_000;
/**
 * The throwaway reading group's session. A member dropped from its group fetches again from its
 * last commit: on a busy 2-core machine, reading the 3 million records of a 10-minute run with a
 * 120 s session, the group was dropped every 2 to 4 minutes and the read did not end within 30
 * minutes. The broker allows sessions up to 30 minutes (group.max.session.timeout.ms).
 */
const READ_SESSION_MS = 600_000;

/**
 * Reads a topic from its start to the end offsets of this moment, in chunks, heartbeating
 * between them. Each offset is handed to `onBatch` once: a rejoin of the reading group (which
 * fetches again from the last commit) skips what was already taken.
 */
async function readTopicToEnd(
  conn: KafkaConnection,
  topic: string,
  onBatch: (messages: Array<{ value: Buffer | null }>) => Promise<void>,
  timeoutMs: number,
): Promise<void> {
  const probe = new KafkaProbe(conn);
  const lastOffsets = await probe.lastOffsets(topic);
  await probe.close();
  await readUpTo(conn, {
    lastOffsets: new Map([[topic, lastOffsets]]),
    consumer: {
      groupId: `chaos-check-${topic}-${process.pid}-${Date.now()}`,
      sessionTimeout: READ_SESSION_MS,
      rebalanceTimeout: READ_SESSION_MS,
      heartbeatInterval: 3_000,
      maxWaitTimeInMs: 100,
      maxBytesPerPartition: 2 * 1024 * 1024,
      maxBytes: 16 * 1024 * 1024,
      allowAutoTopicCreation: false,
    },
    autoCommit: true,
    partitionsConsumedConcurrently: 4,
    chunk: READ_CHUNK,
    timeoutMs,
    timedOut: () => new Error(`${topic} not read to its end within ${timeoutMs} ms`),
    onRecords: (_topic, _partition, messages) => onBatch(messages),
  });
}

async function decodeAll<T>(
  codec: AvroCodec,
  kind: "usage" | "ledger",
  messages: Array<{ value: Buffer | null }>,
): Promise<Array<{ value: T; bytes: Buffer }>> {
  const out: Array<{ value: T; bytes: Buffer }> = [];
  for (const m of messages) {
    const d = codec.decodeKnown(kind, m.value) ?? (await codec.decode(kind, m.value));
    if (!d.ok) throw new Error(`a ${kind} record does not decode: ${d.reason} ${d.detail}`);
    out.push({ value: d.value as T, bytes: m.value! });
  }
  return out;
}

/** Distinct usage events of the usage topic, priced with the rate card. */
export async function readUsageTopic(
  conn: KafkaConnection,
  schemaRegistryUrl: string,
  topics: TopicNames,
  rateCard: RateCard,
  timeoutMs: number,
): Promise<{ events: Map<string, UsageFact>; records: number }> {
  const codec = new AvroCodec(schemaRegistryUrl);
  const events = new Map<string, UsageFact>();
  let records = 0;
  const take = async (batch: Array<{ value: Buffer | null }>) => {
    for (const { value: r } of await decodeAll<UsageEventRecord>(codec, "usage", batch)) {
      records++;
      const cost = priceUsage(rateCard, r.feature as Feature, r.model, r);
      if (cost === null)
        throw new Error(`usage event ${r.eventId}: ${r.feature}/${r.model} not on the rate card`);
      if (!events.has(r.eventId))
        events.set(r.eventId, { userId: names.of(r.userId), costMicros: cost });
    }
  };
  await readTopicToEnd(conn, topics.usage, take, timeoutMs);
  return { events, records };
}

/** Every record of the ledger topic, in partition order, with a digest of its bytes. */
export async function readLedgerTopic(
  conn: KafkaConnection,
  schemaRegistryUrl: string,
  topics: TopicNames,
  timeoutMs: number,
): Promise<LedgerCopy[]> {
  const codec = new AvroCodec(schemaRegistryUrl);
  const copies: LedgerCopy[] = [];
  const take = async (batch: Array<{ value: Buffer | null }>) => {
    for (const { value: r, bytes } of await decodeAll<LedgerEntryRecord>(codec, "ledger", batch)) {
      const entry: LedgerFact = {
        entryId: r.entryId,
        kind: names.of(r.kind),
        userId: names.of(r.userId),
        grantId: r.grantId === null ? null : names.of(r.grantId),
        amountMicros: r.amountMicros,
        balanceAfterMicros: r.balanceAfterMicros,
        detailMicros: r.detailMicros,
        processedAtMs: r.processedAt,
        source: names.of(
          r.sourceTopic === null
            ? "sweep"
            : `${r.sourceTopic}:${r.sourcePartition}:${r.sourceOffset}`,
        ),
      };
      // 64 bits of the record's hash tell copies of one entry apart; the full hash is not needed.
      const digest = createHash("sha1").update(bytes).digest().subarray(0, 8).toString("base64");
      copies.push({ entry, digest });
    }
  };
  await readTopicToEnd(conn, topics.ledger, take, timeoutMs);
  return copies;
}

/** Every member hash in Redis (one node, or every master of a cluster): state and outbox length. */
export async function readRedisMembers(
  target: RedisTarget,
  keyPrefix: string,
): Promise<Map<string, StoredMember>> {
  const redis = connectRedis(target, { maxRetriesPerRequest: 3 });
  const reader = new MemberReader(redis, keySpace(keyPrefix));
  const out = new Map<string, StoredMember>();
  try {
    for await (const userIds of reader.memberIds()) {
      for (const [u, m] of await reader.members(userIds)) {
        out.set(u, { state: m.state, outboxLength: m.outbox.length });
      }
    }
  } finally {
    await redis.quit();
  }
  return out;
}

/**
 * How many rows history's ledger and usage tables hold now (no FINAL: copies not yet merged count
 * too). A sink can store rows and still fail to commit their offsets (its group coordinator moved
 * and kafkajs has not found the new one): its committed lag then stands still while this grows,
 * which tells such a sink from a stuck one. Null while ClickHouse does not answer.
 */
export class HistoryRows {
  private readonly client: ReturnType<typeof createClient>;

  constructor(clickhouseUrl: string, database: string) {
    this.client = createClient({ url: clickhouseUrl, database, request_timeout: 30_000 });
  }

  async count(): Promise<number | null> {
    try {
      const rs = await this.client.query({
        query:
          "SELECT (SELECT count() FROM ledger_entries) + (SELECT count() FROM usage_events) AS n",
        format: "JSONEachRow",
      });
      const [row] = await rs.json<{ n: string | number }>();
      return row === undefined ? null : Number(row.n);
    } catch {
      return null;
    }
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

/** ClickHouse's ledger rows and usage ids, read with FINAL (after ClickHouse's deduplication). */
export async function readHistory(
  clickhouseUrl: string,
  database: string,
): Promise<{ ledger: HistoryLedgerRow[]; usageIds: string[] }> {
  const client = createClient({
    url: clickhouseUrl,
    database,
    request_timeout: 300_000,
    // A long FINAL scan keeps the connection alive with progress headers.
    clickhouse_settings: {
      send_progress_in_http_headers: 1,
      http_headers_progress_interval_ms: "10000",
    },
  });
  try {
    const ledger: HistoryLedgerRow[] = [];
    const rs = await client.query({
      query: "SELECT entry_id, user_id, kind, amount_micros FROM ledger_entries FINAL",
      format: "JSONCompactEachRow",
    });
    for await (const rows of rs.stream<[string, string, string, string]>()) {
      for (const row of rows) {
        const [entryId, userId, kind, amount] = row.json();
        ledger.push({
          entryId,
          userId: names.of(userId),
          kind: names.of(kind),
          amountMicros: Number(amount),
        });
      }
    }
    const usageIds: string[] = [];
    const us = await client.query({
      query: "SELECT event_id FROM usage_events FINAL",
      format: "JSONCompactEachRow",
    });
    for await (const rows of us.stream<[string]>()) {
      for (const row of rows) usageIds.push(row.json()[0]);
    }
    return { ledger, usageIds };
  } finally {
    await client.close();
  }
}

/**
 * The generator's record (JSON lines): accepted events (id, userId, costMicros, ...) and the late
 * duplicates it sent (lateDuplicate: true, id, userId, newerOfMember).
 */
export async function readAccepted(
  path: string,
): Promise<{ accepted: Map<string, UsageFact>; lateDuplicates: LateDuplicateFact[] }> {
  const accepted = new Map<string, UsageFact>();
  const lateDuplicates: LateDuplicateFact[] = [];
  const lines = createInterface({
    input: createReadStream(path),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  for await (const line of lines) {
    if (line === "") continue;
    const r = JSON.parse(line) as {
      id: string;
      userId: string;
      costMicros: number;
      lateDuplicate?: true;
      newerOfMember?: number;
    };
    if (r.lateDuplicate === true)
      lateDuplicates.push({
        id: r.id,
        userId: names.of(r.userId),
        newerOfMember: r.newerOfMember ?? 0,
      });
    else accepted.set(r.id, { userId: names.of(r.userId), costMicros: r.costMicros });
  }
  return { accepted, lateDuplicates };
}
