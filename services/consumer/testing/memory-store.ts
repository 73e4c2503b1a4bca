// An in-memory member store for unit tests of the unit of work (UnitStore of src/unit-store.ts):
// the same compare-and-set on the version, the same outbox fields (`x:<version>`, entries packed
// as the member store's README documents) and leftovers found at load, the same sharded deadline
// index (a newer version's deadline wins), with faults to inject: another writer moving a member's
// version between a load and a write (a CAS conflict), a write, release or deadline index that
// fails as a whole (Redis gone), and a write that lands but that no replica acknowledges. Each call
// can be told to a journal, to check the order of a unit's steps. Test code only; not part of the
// package door.

import type { LedgerEntryRecord } from "@creditflow/contracts";
import {
  type DeadlineItem,
  decodeStoredState,
  type LoadedMember,
  MemberStoreError,
  type MemberWrite,
  type OutboxField,
  type WriteResult,
} from "@creditflow/member-store";
import type { UnitStore } from "../src/unit-store.ts";

/** A member as the in-memory store holds it (the fields of its Redis hash). */
export interface HeldMember {
  version: number;
  stateText: string | null;
  offsets: Map<string, bigint>;
  /** Outbox field (`x:<version>`) to its entries, as written and not released. */
  outbox: Map<string, Buffer[]>;
}

/**
 * Another writer, run on the member as stored just before our write of it lands: whatever it
 * changes, the store then moves the member's version by one, so our CAS is refused.
 */
export type Interference = (held: HeldMember, userId: string) => void;

/** The outbox field of the entries written at `version`. */
export function outboxFieldOf(version: number): string {
  return `x:${version}`;
}

/** A write's entries as one field value: each entry's length (4 bytes, big-endian), then its bytes. */
function packed(values: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const v of values) {
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(v.length);
    parts.push(length, v);
  }
  return Buffer.concat(parts);
}

function versionOf(field: string): number {
  return Number(field.slice(2));
}

/** A ledger record as JSON: readable back in tests with `decodeEntry`. */
export function encodeEntryAsJson(record: LedgerEntryRecord): Buffer {
  return Buffer.from(JSON.stringify(record));
}

export function decodeEntry(value: Buffer): LedgerEntryRecord {
  return JSON.parse(value.toString("utf8")) as LedgerEntryRecord;
}

/** A member's entry in a deadline shard: its deadline and the version it was computed from. */
export interface IndexedDeadline {
  version: number;
  deadlineMs: number | null;
}

const redisGone = (what: string) =>
  new MemberStoreError("redis_failed", `${what}: connection lost`);

export class MemoryMemberStore implements UnitStore {
  readonly membersPerRound: number;
  readonly encodeEntry = encodeEntryAsJson;
  readonly members = new Map<string, HeldMember>();
  /** Deadline shard to its members' entries. */
  readonly deadlines = new Map<number, Map<string, IndexedDeadline>>();
  readonly deadlineShardOf: (userId: string) => number;
  /** Calls of load, write, release and indexDeadlines, and member writes refused by the CAS. */
  loads = 0;
  writes = 0;
  releases = 0;
  indexes = 0;
  refused = 0;
  /**
   * Set: each call is told here as it is answered (`load`, `write`, `replicas` once the
   * replicas hold a write, `release`, `index`, `due`); a call that fails is not told.
   */
  journal: string[] | null = null;
  private readonly interference = new Map<string, { times: number; by: Interference }>();
  private readonly writeFailures = new Map<number, Error>();
  private readonly replicasLost = new Set<number>();
  private readonly releaseFailures = new Map<number, Error>();
  private readonly indexFailures = new Map<number, Error>();

  /** `deadlineShardOf`: the shard of a member's deadline (default: every member in shard 0). */
  constructor(membersPerRound = 250, deadlineShardOf: (userId: string) => number = () => 0) {
    this.membersPerRound = membersPerRound;
    this.deadlineShardOf = deadlineShardOf;
  }

  /** The next `times` writes of the member find it changed by another writer (`by`). */
  interfere(userId: string, times: number, by: Interference = () => undefined): void {
    this.interference.set(userId, { times, by });
  }

  /**
   * The write call `calls` from now (1: the next one) fails as a whole with `error`, nothing of
   * it written; the calls before it succeed.
   */
  failWrite(calls = 1, error: Error = redisGone("write members")): void {
    this.writeFailures.set(this.writes + calls, error);
  }

  /**
   * The write call `calls` from now lands (every member of it written as usual), then fails
   * replicas_behind, as the Redis store's does when WAIT finds too few replicas in time.
   */
  loseReplicas(calls = 1): void {
    this.replicasLost.add(this.writes + calls);
  }

  /** The release call `calls` from now fails as a whole, nothing of it deleted. */
  failRelease(calls = 1, error: Error = redisGone("release outbox")): void {
    this.releaseFailures.set(this.releases + calls, error);
  }

  /** The indexDeadlines call `calls` from now fails as a whole, nothing of it indexed. */
  failIndexDeadlines(calls = 1, error: Error = redisGone("index deadlines")): void {
    this.indexFailures.set(this.indexes + calls, error);
  }

  /** The member as held (a new one, version 0, when never written). */
  held(userId: string): HeldMember {
    let m = this.members.get(userId);
    if (m === undefined) {
      m = { version: 0, stateText: null, offsets: new Map(), outbox: new Map() };
      this.members.set(userId, m);
    }
    return m;
  }

  async load(userIds: string[]): Promise<Map<string, LoadedMember>> {
    this.loads++;
    await Promise.resolve();
    this.journal?.push("load");
    const out = new Map<string, LoadedMember>();
    for (const userId of userIds) {
      const m = this.members.get(userId);
      if (m === undefined) {
        out.set(userId, {
          userId,
          version: 0,
          state: null,
          stateText: null,
          offsets: new Map(),
          leftovers: [],
        });
        continue;
      }
      const leftovers: OutboxField[] = [...m.outbox]
        .sort(([a], [b]) => versionOf(a) - versionOf(b))
        .map(([field, values]) => ({
          userId,
          field,
          packed: packed(values),
          count: values.length,
        }));
      out.set(userId, {
        userId,
        version: m.version,
        state: m.stateText === null ? null : decodeStoredState(userId, m.stateText),
        stateText: m.stateText,
        offsets: new Map(m.offsets),
        leftovers,
      });
    }
    return out;
  }

  async write(writes: MemberWrite[]): Promise<WriteResult[]> {
    const call = ++this.writes;
    await Promise.resolve();
    const failure = this.writeFailures.get(call);
    if (failure !== undefined) throw failure;
    this.journal?.push("write");
    const results = writes.map((w): WriteResult => {
      const m = this.held(w.userId);
      const other = this.interference.get(w.userId);
      if (other !== undefined && other.times > 0) {
        other.times--;
        other.by(m, w.userId);
        m.version++;
      }
      if (m.version !== w.expectedVersion) {
        this.refused++;
        return { ok: false, userId: w.userId, currentVersion: m.version };
      }
      m.version++;
      m.stateText = w.stateText;
      for (const [field, offset] of w.offsets) m.offsets.set(field, offset);
      if (w.outbox.length === 0)
        return { ok: true, userId: w.userId, version: m.version, written: null };
      const field = outboxFieldOf(m.version);
      m.outbox.set(field, [...w.outbox]);
      return {
        ok: true,
        userId: w.userId,
        version: m.version,
        written: { userId: w.userId, field, packed: packed(w.outbox), count: w.outbox.length },
      };
    });
    // The replicas' acknowledgement, before any of the call is reported written.
    await Promise.resolve();
    if (this.replicasLost.has(call)) {
      throw new MemberStoreError("replicas_behind", "write members: 0 of 1 replicas acknowledged");
    }
    this.journal?.push("replicas");
    return results;
  }

  async release(fields: OutboxField[]): Promise<void> {
    const call = ++this.releases;
    await Promise.resolve();
    const failure = this.releaseFailures.get(call);
    if (failure !== undefined) throw failure;
    for (const f of fields) this.members.get(f.userId)?.outbox.delete(f.field);
    this.journal?.push("release");
  }

  async indexDeadlines(items: DeadlineItem[]): Promise<void> {
    const call = ++this.indexes;
    await Promise.resolve();
    const failure = this.indexFailures.get(call);
    if (failure !== undefined) throw failure;
    for (const it of items) {
      const shard = this.deadlineShardOf(it.userId);
      let index = this.deadlines.get(shard);
      if (index === undefined) {
        index = new Map();
        this.deadlines.set(shard, index);
      }
      const held = index.get(it.userId);
      if (held !== undefined && held.version > it.version) continue;
      index.set(it.userId, { version: it.version, deadlineMs: it.deadlineMs });
    }
    this.journal?.push("index");
  }

  async dueMembers(nowMs: number, limit: number, shards: readonly number[]): Promise<string[]> {
    await Promise.resolve();
    this.journal?.push("due");
    const out: string[] = [];
    for (const shard of shards) {
      if (out.length >= limit) break;
      // A sorted set's order: by score, then by member.
      const due = [...(this.deadlines.get(shard) ?? [])]
        .filter(([, d]) => d.deadlineMs !== null && d.deadlineMs <= nowMs)
        .sort(([a, x], [b, y]) => x.deadlineMs! - y.deadlineMs! || (a < b ? -1 : a > b ? 1 : 0));
      for (const [userId] of due.slice(0, limit - out.length)) out.push(userId);
    }
    return out;
  }

  /** The member's deadline as indexed, wherever its shard (undefined: never indexed). */
  indexedDeadline(userId: string): IndexedDeadline | undefined {
    return this.deadlines.get(this.deadlineShardOf(userId))?.get(userId);
  }
}
