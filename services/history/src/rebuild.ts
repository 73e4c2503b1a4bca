// Rebuild of Redis after its loss: every member's state replayed with the engine from the usage
// and commands topics, at the processing times the ledger in ClickHouse recorded, checked entry by
// entry against that ledger, and written back the way the consumer writes it (through the
// member store's MemberStore, the consumer's own CAS write). The planning and replay are pure;
// rebuildRedis does the I/O.
//
// Why a replay and not a sum: the ledger gives each member's balance, but not the rest of the
// state the consumer keeps (grants with their expiry and recurrence, tier and cycle anchor, usage
// windows, recent tasks, the memory of recent ids). The engine is deterministic given the
// sequence of (input, nowMs); the consumer applies each record at its process clock, and that
// clock is exactly the `processedAt` of the entries the record produced. Entries without a source
// record were made by the sweeper (`advanceTo` at its clock). So the ledger says when, Kafka says
// what, and the ledger's ids, amounts and running balances check the result.
//
// What Redis held and the ledger does not: entries written to outboxes and not yet relayed when
// Redis was lost (a consumer killed between its write and its relay, or between two relay sends).
// Their records are above the consumer group's committed offset (a unit commits after its relay).
// The consumer relays a member's outbox in write order, each send acknowledged before the next,
// and relays what an earlier writer left before its own entries, so the ledger holds a prefix of
// each member's entries. The rebuild therefore replays a member, per source partition, up to its
// last record with entries in the ledger (and every committed record), and leaves its later
// records to the consumer, which reads them again from the committed offset: they were either
// never applied or applied and lost with Redis, and nothing of them reached the ledger. A record
// whose entries were cut by a relay send boundary (`#0` relayed, `#1` not) is replayed whole and
// the entries the ledger lacks go back to the member's outbox, for the consumer to relay: the
// consumer applying that record again would make `#0` a second time at another clock.
// Sweeps are known from the ledger only: one lost whole is not replayed, and the consumer's sweeper
// advances the rebuilt member again (its entries never reached the ledger, so none is made twice);
// one cut between two sends is owed like a record. A committed record's entries were relayed
// before its commit: one missing is a mismatch, as is an entry missing before one that was relayed.

import { type ClickHouseClient, createClient } from "@clickhouse/client";
import {
  classifyRecords,
  type InputRecord,
  type LedgerEntryRecord,
  ledgerRecordFromEntry,
  type RawRecord,
  rawRecordOf,
  type TopicNames,
} from "@creditflow/contracts";
import {
  advanceTo,
  apply,
  type EngineConfig,
  type EngineContext,
  EngineError,
  encodeState,
  type LedgerEntry,
  ledgerBalanceMicros,
  type MemberState,
  nextDeadlineMs,
  openMember,
} from "@creditflow/engine";
import { AvroCodec, connectKafka, keyPartition, partitionCount, readUpTo } from "@creditflow/kafka";
import {
  connectRedis,
  isCluster,
  keySpace,
  MemberStore,
  type MemberWrite,
  offsetField,
} from "@creditflow/member-store";
import { RebuildError } from "./errors.ts";

/** One ledger entry as ClickHouse holds it (FINAL: one row per entry id). */
export interface LedgerFact {
  entryId: string;
  userId: string;
  kind: string;
  amountMicros: number;
  balanceAfterMicros: number;
  eventAtMs: number;
  processedAtMs: number;
  /** null for time-driven entries written by the sweeper. */
  sourceTopic: string | null;
  sourcePartition: number | null;
  sourceOffset: bigint | null;
  /** Position on the ledger topic (one partition per member): the relay order. */
  ledgerOffset: bigint;
}

/** One step of a member's replay, in the consumer's order. */
export type ReplayStep =
  | { kind: "record"; record: InputRecord; nowMs: number; entries: LedgerFact[] }
  | { kind: "time"; nowMs: number; entries: LedgerFact[] };

/** The first thing that differs between the replay and the ledger. */
export interface Mismatch {
  userId: string;
  /** `opening`, `entry_id`, `amount_micros`, `balance_after_micros`, `source`, `balance`. */
  field: string;
  detail: string;
}

export interface MemberReplay {
  userId: string;
  state: MemberState | null;
  /** Last replayed offset per source partition (keyed by offsetField), as the consumer stores them. */
  offsets: Map<string, bigint>;
  recordsReplayed: number;
  timeSteps: number;
  /**
   * Records not replayed: above the committed offset and after the member's last record with
   * ledger entries on that partition. The consumer applies them from its committed offset.
   */
  leftToConsumer: number;
  /**
   * Entries the replay made that the ledger lacks, in order: the tail of a write whose relay was
   * cut between two sends. They go to the member's outbox, which the consumer relays.
   */
  owed: LedgerEntryRecord[];
  mismatch: Mismatch | null;
}

export interface ReplayOptions {
  /**
   * The consumer group's committed offset per source partition (the first offset not committed),
   * keyed by `partitionKey`; a partition missing from the map has nothing committed. Without it
   * every record given counts as committed: applied, and its entries relayed.
   */
  committed?: ReadonlyMap<string, bigint>;
}

/** The key of a source partition in the rebuild's maps. */
export const partitionKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

const sourceKey = (topic: string, partition: number, offset: bigint) =>
  `${topic}\u0000${partition}\u0000${offset}`;

/**
 * The member's records to replay: every committed record, and on each partition every record up
 * to the member's last one with ledger entries. A record between two with entries was applied
 * (a partition's records reach a member in offset order); one after the last was not applied, or
 * was applied and lost with Redis before any of its entries was relayed: its place is the
 * consumer's, not the rebuild's (not even a record that made no entry: a refusal judged again
 * later may be accepted, and the consumer would skip a record the rebuild had marked applied).
 */
export function recordsToReplay(
  facts: LedgerFact[],
  records: InputRecord[],
  committed: ReadonlyMap<string, bigint> | undefined,
): { replay: InputRecord[]; left: number } {
  if (committed === undefined) return { replay: records, left: 0 };
  const lastWithEntries = new Map<string, bigint>();
  for (const f of facts) {
    if (f.sourceTopic === null || f.sourcePartition === null || f.sourceOffset === null) continue;
    const key = partitionKey(f.sourceTopic, f.sourcePartition);
    const cur = lastWithEntries.get(key);
    if (cur === undefined || f.sourceOffset > cur) lastWithEntries.set(key, f.sourceOffset);
  }
  const replay: InputRecord[] = [];
  let left = 0;
  for (const r of records) {
    const key = partitionKey(r.topic, r.partition);
    const last = lastWithEntries.get(key);
    if (r.offset < (committed.get(key) ?? 0n) || (last !== undefined && r.offset <= last))
      replay.push(r);
    else left++;
  }
  return { replay, left };
}

function byLedgerOrder(a: LedgerFact, b: LedgerFact): number {
  return a.ledgerOffset < b.ledgerOffset ? -1 : a.ledgerOffset > b.ledgerOffset ? 1 : 0;
}

/**
 * Orders one member's records and sweeper steps as the consumer applied them. Inside one source
 * partition the order is the offset order (the consumer's rule). Across partitions and sweeps the
 * order is the processing time of the entries; at the same millisecond a sweep comes first (a
 * record applied first would have made the sweep's entries itself) and then the relay order on the
 * ledger topic decides. A record that made no entry (a duplicate, a refusal) takes the time of
 * the record before it in its partition (after it if none): a refusal or a duplicate changes no
 * credits and no time, so only the order of the member's memory of ids depends on it. A command
 * applied without an entry (a cancel, a downgrade) is the one case where the time matters: it is
 * judged at that earlier time (the same paid cycle, unless a reset fell in between: then the
 * cycle it ends differs, which the entry check sees only once the fall-back is in the ledger), and
 * a member whose last input was one keeps the earlier clock
 * (time never goes back; the next record or sweep moves it on; no balance or deadline reads it).
 */
export function planMember(facts: LedgerFact[], records: InputRecord[]): ReplayStep[] {
  const bySource = new Map<string, LedgerFact[]>();
  const timed = new Map<number, LedgerFact[]>();
  for (const f of facts) {
    if (f.sourceTopic === null || f.sourcePartition === null || f.sourceOffset === null) {
      const list = timed.get(f.processedAtMs) ?? [];
      list.push(f);
      timed.set(f.processedAtMs, list);
      continue;
    }
    const key = sourceKey(f.sourceTopic, f.sourcePartition, f.sourceOffset);
    const list = bySource.get(key) ?? [];
    list.push(f);
    bySource.set(key, list);
  }
  type Item = { step: ReplayStep; at: number; rank: number; ledger: bigint };
  const sequences: Item[][] = [];
  const partitions = new Map<string, InputRecord[]>();
  for (const r of records) {
    const key = `${r.topic}\u0000${r.partition}`;
    const list = partitions.get(key) ?? [];
    list.push(r);
    partitions.set(key, list);
  }
  for (const list of partitions.values()) {
    list.sort((a, b) => (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
    const items = list.map((record) => {
      const entries = (bySource.get(sourceKey(record.topic, record.partition, record.offset)) ?? [])
        .slice()
        .sort(byLedgerOrder);
      const known = entries.length > 0;
      const at = known ? Math.max(...entries.map((e) => e.processedAtMs)) : Number.NaN;
      const ledger = known ? entries[0]!.ledgerOffset : -1n;
      return { step: { kind: "record", record, nowMs: at, entries }, at, rank: 1, ledger } as Item;
    });
    // Records without entries take their neighbour's time: the one before, else the one after.
    let prev: Item | null = null;
    for (const it of items) {
      if (!Number.isNaN(it.at)) prev = it;
      else if (prev !== null) ({ at: it.at, ledger: it.ledger } = prev);
    }
    let next: Item | null = null;
    for (let i = items.length - 1; i >= 0; i--) {
      const it = items[i]!;
      if (it.step.kind === "record" && it.step.entries.length > 0) next = it;
      else if (Number.isNaN(it.at)) {
        it.at = next === null ? Number.POSITIVE_INFINITY : next.at;
        it.ledger = next === null ? -1n : next.ledger;
      }
    }
    for (const it of items) if (it.step.kind === "record") it.step.nowMs = it.at;
    sequences.push(items);
  }
  const sweeps: Item[] = [...timed.entries()]
    .map(([at, entries]) => {
      const sorted = entries.slice().sort(byLedgerOrder);
      return {
        step: { kind: "time", nowMs: at, entries: sorted } as ReplayStep,
        at,
        rank: 0,
        ledger: sorted[0]!.ledgerOffset,
      };
    })
    .sort((a, b) => a.at - b.at);
  sequences.push(sweeps);

  const heads = sequences.map(() => 0);
  const out: ReplayStep[] = [];
  for (;;) {
    let best = -1;
    for (let s = 0; s < sequences.length; s++) {
      const it = sequences[s]![heads[s]!];
      if (it === undefined) continue;
      if (best < 0) {
        best = s;
        continue;
      }
      const b = sequences[best]![heads[best]!]!;
      if (
        it.at < b.at ||
        (it.at === b.at && (it.rank < b.rank || (it.rank === b.rank && it.ledger < b.ledger)))
      )
        best = s;
    }
    if (best < 0) return out;
    out.push(sequences[best]![heads[best]!]!.step);
    heads[best]!++;
  }
}

/** The sign-up time of a member: the `eventAt` of its opening grant, its first ledger entry. */
export function signUpFromLedger(userId: string, facts: LedgerFact[]): number | null {
  let first: LedgerFact | null = null;
  for (const f of facts) {
    if (
      first === null ||
      f.processedAtMs < first.processedAtMs ||
      (f.processedAtMs === first.processedAtMs && f.ledgerOffset < first.ledgerOffset)
    )
      first = f;
  }
  if (first === null || first.kind !== "grant") return null;
  const opening =
    first.entryId.startsWith(`${userId}:grant:`) && first.entryId.endsWith(`:${first.eventAtMs}`);
  return opening ? first.eventAtMs : null;
}

/**
 * Replays one member (pure): opened as the consumer opens it, each record of `recordsToReplay`
 * applied at its recorded time (a record the engine throws on is skipped, as the consumer
 * dead-letters it), each sweep as `advanceTo`. Every entry made must be in the ledger with the
 * same amount, running balance and source, every ledger entry must be made, and the state must
 * sum to the ledger. With `committed` known, the entries made after the last one the ledger
 * holds may be missing from it (`owed`) when a sweep or an uncommitted record made them: the
 * relay of their write was cut. A committed record's entries were relayed before its commit; an
 * entry in the ledger after one that is not contradicts the relay order: both are mismatches.
 */
export function replayMember(
  userId: string,
  facts: LedgerFact[],
  records: InputRecord[],
  config: EngineConfig,
  options: ReplayOptions = {},
): MemberReplay {
  const { committed } = options;
  const { replay, left } = recordsToReplay(facts, records, committed);
  const result: MemberReplay = {
    userId,
    state: null,
    offsets: new Map(),
    recordsReplayed: 0,
    timeSteps: 0,
    leftToConsumer: left,
    owed: [],
    mismatch: null,
  };
  const fail = (field: string, detail: string): MemberReplay => {
    result.mismatch = { userId, field, detail };
    return result;
  };
  const signUpMs = signUpFromLedger(userId, facts);
  if (signUpMs === null) return fail("opening", "the first ledger entry is not the opening grant");
  const byId = new Map(facts.map((f) => [f.entryId, f]));
  const made = new Set<string>();
  let firstOwed: string | null = null;
  const mayOwe = (source: InputRecord | null): boolean =>
    committed !== undefined &&
    (source === null ||
      source.offset >= (committed.get(partitionKey(source.topic, source.partition)) ?? 0n));
  const check = (e: LedgerEntry, source: InputRecord | null): Mismatch | null => {
    const f = byId.get(e.id);
    if (f === undefined) {
      if (!mayOwe(source))
        return { userId, field: "entry_id", detail: `replayed entry ${e.id} is not in the ledger` };
      firstOwed ??= e.id;
      result.owed.push(
        ledgerRecordFromEntry(
          source === null
            ? e
            : {
                ...e,
                topic: source.topic,
                partition: source.partition,
                offset: `${source.offset}`,
              },
        ),
      );
      return null;
    }
    if (firstOwed !== null)
      return {
        userId,
        field: "entry_id",
        detail: `${e.id} is in the ledger after ${firstOwed}, which is not (the relay keeps order)`,
      };
    made.add(e.id);
    if (f.amountMicros !== e.amountMicros)
      return {
        userId,
        field: "amount_micros",
        detail: `${e.id}: replay ${e.amountMicros}, ledger ${f.amountMicros}`,
      };
    if (f.balanceAfterMicros !== e.balanceAfterMicros)
      return {
        userId,
        field: "balance_after_micros",
        detail: `${e.id}: replay ${e.balanceAfterMicros}, ledger ${f.balanceAfterMicros}`,
      };
    const sameSource =
      source === null
        ? f.sourceTopic === null
        : f.sourceTopic === source.topic &&
          f.sourcePartition === source.partition &&
          f.sourceOffset === source.offset;
    if (!sameSource) return { userId, field: "source", detail: `${e.id}: another source record` };
    return null;
  };

  let state: MemberState | null = null;
  for (const step of planMember(facts, replay)) {
    // A partition whose records all left no entry (only refusals, say) is planned last, at the
    // member's clock: nothing it holds changed credits or time (the entry check confirms it).
    const nowMs = Number.isFinite(step.nowMs) ? step.nowMs : (state?.clockMs ?? signUpMs);
    const ctx: EngineContext = { config, nowMs };
    if (step.kind === "time") {
      if (state === null) return fail("opening", "a sweep comes before the member was opened");
      const advanced = advanceTo(state, ctx);
      state = advanced.state;
      result.timeSteps++;
      for (const e of advanced.entries) {
        const m = check(e, null);
        if (m !== null) return fail(m.field, m.detail);
      }
      continue;
    }
    const r = step.record;
    result.offsets.set(offsetField(r.topic, r.partition), r.offset);
    result.recordsReplayed++;
    try {
      let current = state;
      const entries: LedgerEntry[] = [];
      if (current === null) {
        const opened = openMember(userId, signUpMs, ctx);
        current = opened.state;
        entries.push(...opened.entries);
      }
      // At the record's acceptance time, as the consumer applied it: the id memory and its
      // duplicate horizon come back as they were.
      const applied = apply(current, r.input, ctx, r.acceptedAtMs ?? ctx.nowMs);
      state = applied.state;
      if (applied.outcome.status === "applied") entries.push(...applied.entries);
      for (const e of entries) {
        const m = check(e, r);
        if (m !== null) return fail(m.field, m.detail);
      }
    } catch (error) {
      // The consumer dead-letters a record the engine fails on and keeps the state as it was.
      if (!(error instanceof EngineError)) throw error;
    }
  }
  result.state = state;
  for (const f of facts) {
    if (!made.has(f.entryId))
      return fail("entry_id", `ledger entry ${f.entryId} is not made by the replay`);
  }
  if (state === null) return fail("opening", "no record of the member was found on Kafka");
  const ledgerSum = facts.reduce((s, f) => s + f.amountMicros, 0);
  const owedSum = result.owed.reduce((s, e) => s + e.amountMicros, 0);
  const balance = ledgerBalanceMicros(state);
  if (balance !== ledgerSum + owedSum)
    return fail(
      "balance",
      `rebuilt balance ${balance}, ledger sum ${ledgerSum}` +
        (owedSum === 0 ? "" : ` + ${owedSum} of entries owed to the ledger`),
    );
  return result;
}

export interface RebuildLimits {
  /** Source records held in memory at once (usage + commands up to the replay bound). */
  maxRecords: number;
  /** Members written per Redis pipeline round. */
  membersPerRound: number;
  /** Time to read the source topics up to their bounds. */
  readTimeoutMs: number;
}

export const DEFAULT_REBUILD_LIMITS: RebuildLimits = {
  maxRecords: 5_000_000,
  membersPerRound: 1_000,
  readTimeoutMs: 300_000,
};

/**
 * Where the system keeps its data: Kafka and its schema registry, Redis (one, or a cluster),
 * ClickHouse's history database, the topic names and the prefix of the consumer's Redis keys.
 */
export interface SystemAddresses {
  brokers: string[];
  schemaRegistryUrl: string;
  /** A single Redis; or set redisClusterNodes instead. */
  redisUrl?: string;
  /** host:port of some nodes of a Redis Cluster; set means cluster mode. */
  redisClusterNodes?: string[];
  clickhouseUrl: string;
  database: string;
  topics: TopicNames;
  keyPrefix: string;
}

export interface RebuildOptions extends SystemAddresses {
  /** The consumer's group: its committed offsets say which records were applied. */
  consumerGroupId: string;
  config: EngineConfig;
  limits?: Partial<RebuildLimits>;
  /** Called after each member is replayed (the CLI's progress bar). */
  onProgress?: (done: number, total: number) => void;
}

export interface RebuildSummary {
  members: number;
  /** Members written to Redis (absent before, verified). */
  written: number;
  /** Members already present in Redis: left untouched. */
  present: number;
  recordsReplayed: number;
  timeSteps: number;
  /** Records read and not replayed (after the member's last relayed one, not committed). */
  leftToConsumer: number;
  /** Entries a cut relay left out of the ledger, put back in their members' outboxes. */
  owedEntries: number;
  /** Records of the source topics that the consumer dead-letters. */
  deadLetters: number;
  seconds: number;
  mismatches: Mismatch[];
}

function checkLimits(l: RebuildLimits): void {
  for (const [field, value] of Object.entries(l)) {
    if (!Number.isSafeInteger(value) || value < 1)
      throw new RebuildError("invalid_limits", `limits.${field}: must be a whole number > 0`, {
        field: `limits.${field}`,
      });
  }
}

/** Every ledger entry of the database, grouped by member. */
export async function readLedger(client: ClickHouseClient): Promise<Map<string, LedgerFact[]>> {
  const rs = await client.query({
    query: `
      SELECT entry_id, user_id, kind, amount_micros, balance_after_micros,
             toUnixTimestamp64Milli(event_at) AS event_ms,
             toUnixTimestamp64Milli(processed_at) AS processed_ms,
             source_topic, source_partition, source_offset, ledger_offset
      FROM ledger_entries FINAL
      ORDER BY user_id, ledger_offset`,
    format: "JSONEachRow",
  });
  type Row = {
    entry_id: string;
    user_id: string;
    kind: string;
    amount_micros: string;
    balance_after_micros: string;
    event_ms: string;
    processed_ms: string;
    source_topic: string | null;
    source_partition: number | null;
    source_offset: string | null;
    ledger_offset: string;
  };
  const out = new Map<string, LedgerFact[]>();
  for await (const rows of rs.stream<Row>()) {
    for (const row of rows) {
      const r = row.json();
      const list = out.get(r.user_id) ?? [];
      list.push({
        entryId: r.entry_id,
        userId: r.user_id,
        kind: r.kind,
        amountMicros: Number(r.amount_micros),
        balanceAfterMicros: Number(r.balance_after_micros),
        eventAtMs: Number(r.event_ms),
        processedAtMs: Number(r.processed_ms),
        sourceTopic: r.source_topic,
        sourcePartition: r.source_partition,
        sourceOffset: r.source_offset === null ? null : BigInt(r.source_offset),
        ledgerOffset: BigInt(r.ledger_offset),
      });
      out.set(r.user_id, list);
    }
  }
  return out;
}

/**
 * The last offset to read of each partition (`read`): everything below the consumer group's
 * committed offset was applied, and so was every record that has ledger entries (a crash after
 * the write and before the commit). Which of these a member replays is `recordsToReplay`'s
 * choice, from `committed` (the group's committed offset per partition). Later records are left
 * to the consumer, which will read them from its committed offset. Never past the high-water mark
 * taken at start.
 */
async function replayBounds(
  options: RebuildOptions,
  ledger: Map<string, LedgerFact[]>,
): Promise<{ read: Map<string, Map<number, bigint>>; committed: Map<string, bigint> }> {
  const conn = connectKafka(options.brokers, "creditflow-rebuild");
  const admin = conn.kafka.admin();
  await admin.connect();
  /** By topic, then partition. */
  const bounds = new Map<string, Map<number, bigint>>();
  const committedAt = new Map<string, bigint>();
  try {
    const withEntries = new Map<string, bigint>();
    for (const facts of ledger.values()) {
      for (const f of facts) {
        if (f.sourceTopic === null || f.sourcePartition === null || f.sourceOffset === null)
          continue;
        const key = partitionKey(f.sourceTopic, f.sourcePartition);
        const cur = withEntries.get(key);
        if (cur === undefined || f.sourceOffset > cur) withEntries.set(key, f.sourceOffset);
      }
    }
    for (const topic of [options.topics.usage, options.topics.commands]) {
      const ends = await admin.fetchTopicOffsets(topic);
      const [committed] = await admin.fetchOffsets({
        groupId: options.consumerGroupId,
        topics: [topic],
      });
      const done = new Map(
        (committed?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]),
      );
      const topicBounds = new Map<number, bigint>();
      for (const e of ends) {
        const key = partitionKey(topic, e.partition);
        const high = BigInt(e.high) - 1n;
        const c = done.get(e.partition) ?? -1n; // -1: nothing committed
        if (c > 0n) committedAt.set(key, c);
        let last = c - 1n;
        const entered = withEntries.get(key);
        if (entered !== undefined && entered > last) last = entered;
        if (last > high) last = high;
        if (last >= BigInt(e.low)) topicBounds.set(e.partition, last);
      }
      if (topicBounds.size > 0) bounds.set(topic, topicBounds);
    }
  } finally {
    await admin.disconnect();
  }
  return { read: bounds, committed: committedAt };
}

/** Reads the usage and commands topics from their start up to the bounds (a throwaway reader). */
async function readSources(
  options: RebuildOptions,
  bounds: Map<string, Map<number, bigint>>,
  limits: RebuildLimits,
): Promise<{ usage: RawRecord[]; commands: RawRecord[] }> {
  const out = { usage: [] as RawRecord[], commands: [] as RawRecord[] };
  let total = 0;
  await readUpTo(connectKafka(options.brokers, "creditflow-rebuild"), {
    lastOffsets: bounds,
    consumer: {
      groupId: `creditflow-rebuild-${process.pid}-${Date.now()}`,
      maxWaitTimeInMs: 100,
      allowAutoTopicCreation: false,
    },
    timeoutMs: limits.readTimeoutMs,
    timedOut: () =>
      new RebuildError(
        "read_timeout",
        `source topics not read within limits.readTimeoutMs (${limits.readTimeoutMs} ms)`,
        { field: "limits.readTimeoutMs" },
      ),
    onRecords: (topic, partition, messages) => {
      const into = topic === options.topics.usage ? out.usage : out.commands;
      for (const m of messages) {
        into.push(rawRecordOf(topic, partition, m));
        if (++total > limits.maxRecords) {
          throw new RebuildError(
            "too_many_records",
            `more than limits.maxRecords (${limits.maxRecords})`,
            { field: "limits.maxRecords" },
          );
        }
      }
    },
  });
  return out;
}

/**
 * Rebuilds every member of the ledger that is absent from Redis. Run it with the consumers
 * stopped: a consumer applying records to a member that is not yet rebuilt would open it anew.
 */
export async function rebuildRedis(options: RebuildOptions): Promise<RebuildSummary> {
  const started = performance.now();
  const limits = { ...DEFAULT_REBUILD_LIMITS, ...options.limits };
  checkLimits(limits);
  const client = createClient({
    url: options.clickhouseUrl,
    database: options.database,
    request_timeout: 120_000,
    // A long FINAL scan keeps the connection alive with progress headers.
    clickhouse_settings: {
      send_progress_in_http_headers: 1,
      http_headers_progress_interval_ms: "10000",
    },
  });
  let ledger: Map<string, LedgerFact[]>;
  try {
    ledger = await readLedger(client);
  } finally {
    await client.close();
  }
  const bounds = await replayBounds(options, ledger);
  const raw = await readSources(options, bounds.read, limits);
  const codec = new AvroCodec(options.schemaRegistryUrl);
  // The consumer's decoder needs the current schema ids (registering the same schema is a no-op),
  // and owed entries go to the outboxes in the ledger topic's encoding.
  await codec.register(options.topics, ["usage", "command", "ledger"]);
  const rateCard = options.config.rateCard;
  const classified = [
    ...(await classifyRecords(raw.usage, "usage", codec, rateCard)),
    ...(await classifyRecords(raw.commands, "command", codec, rateCard)),
  ];
  const recordsByUser = new Map<string, InputRecord[]>();
  let deadLetters = 0;
  for (const c of classified) {
    if (!c.ok) {
      deadLetters++;
      continue;
    }
    const list = recordsByUser.get(c.record.input.userId) ?? [];
    list.push(c.record);
    recordsByUser.set(c.record.input.userId, list);
  }

  const summary: RebuildSummary = {
    members: ledger.size,
    written: 0,
    present: 0,
    recordsReplayed: 0,
    timeSteps: 0,
    leftToConsumer: 0,
    owedEntries: 0,
    deadLetters,
    seconds: 0,
    mismatches: [],
  };
  const users = [...ledger.keys()].sort();
  const verified: MemberReplay[] = [];
  users.forEach((userId, i) => {
    const replay = replayMember(
      userId,
      ledger.get(userId)!,
      recordsByUser.get(userId) ?? [],
      options.config,
      { committed: bounds.committed },
    );
    summary.recordsReplayed += replay.recordsReplayed;
    summary.timeSteps += replay.timeSteps;
    if (replay.mismatch !== null) summary.mismatches.push(replay.mismatch);
    else {
      verified.push(replay);
      summary.leftToConsumer += replay.leftToConsumer;
    }
    options.onProgress?.(i + 1, users.length);
  });

  // Each deadline into the shard the consumer owning the member's usage partition sweeps.
  const usagePartitions = await partitionCount(
    connectKafka(options.brokers, "creditflow-rebuild"),
    options.topics.usage,
  );
  const redis = connectRedis(options, { maxRetriesPerRequest: 3 });
  try {
    // The states, and in the outboxes only the entries a cut relay left out of the ledger.
    const store = new MemberStore(
      redis,
      keySpace(options.keyPrefix),
      // On a cluster, a member written back counts once a replica holds it (as the consumer's).
      {
        membersPerRound: limits.membersPerRound,
        minReplicaAcks: isCluster(redis) ? 1 : 0,
        deadlineShardOf: (userId) => keyPartition(userId, usagePartitions),
      },
      (e) => codec.encode("ledger", e),
    );
    for (let i = 0; i < verified.length; i += limits.membersPerRound) {
      const round = verified.slice(i, i + limits.membersPerRound);
      const writes: MemberWrite[] = round.map((r) => ({
        userId: r.userId,
        // Version 0 = absent: the consumer's CAS refuses to overwrite a member that exists.
        expectedVersion: 0,
        stateText: encodeState(r.state!),
        offsets: r.offsets,
        outbox: r.owed.map((e) => store.encodeEntry(e)),
      }));
      const results = await store.write(writes);
      const deadlines: { userId: string; version: number; deadlineMs: number | null }[] = [];
      results.forEach((res, j) => {
        if (!res.ok) {
          summary.present++;
          return;
        }
        summary.written++;
        summary.owedEntries += writes[j]!.outbox.length;
        const state = round[j]!.state!;
        deadlines.push({
          userId: res.userId,
          version: res.version,
          // A member with owed entries is due now: the sweeper loads it, relays its outbox (as
          // after a crash between a sweep's write and its relay) and indexes its real deadline.
          deadlineMs:
            writes[j]!.outbox.length > 0
              ? state.clockMs
              : nextDeadlineMs(state, { config: options.config }),
        });
      });
      await store.reindexDeadlines(deadlines);
    }
  } finally {
    await redis.quit();
  }
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}
