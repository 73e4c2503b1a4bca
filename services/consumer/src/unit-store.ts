// What a unit of work needs of the member store, and nothing more: load members, write them with
// the compare-and-set on their version (held by the replicas before it counts), release relayed
// outbox fields, and the sharded deadline index the sweeper reads. Structural: the real
// MemberStore of @creditflow/member-store (Redis) satisfies it as is, and so does the in-memory
// store of the unit tests (testing/memory-store.ts), so the unit's planning is tested without Redis.

import type {
  DeadlineItem,
  EncodeLedgerEntry,
  LoadedMember,
  MemberWrite,
  OutboxField,
  WriteResult,
} from "@creditflow/member-store";

export interface UnitStore {
  /** Members per round trip: a unit goes in rounds of this many (the round's load and write). */
  readonly membersPerRound: number;
  /** Encodes a ledger record for the outbox and the ledger topic; called once per entry made. */
  readonly encodeEntry: EncodeLedgerEntry;
  /**
   * Each member as stored now: version (0 when never written), state, offsets, and the outbox
   * fields a predecessor wrote and may not have relayed (leftovers), in write order. Every id
   * asked for is in the answer.
   */
  load(userIds: string[]): Promise<Map<string, LoadedMember>>;
  /**
   * Each write, in order, all or nothing per member: stored only if the member's version is still
   * `expectedVersion` (then it is `expectedVersion + 1`, and the write's entries wait in the
   * outbox field it answers); otherwise refused with the version found. Resolves only once the
   * store's replicas hold the writes (MemberStore: WAIT for minReplicaAcks), since a write lost in
   * a failover must not be relayed or committed. An infrastructure failure, or replicas that do
   * not acknowledge in time, rejects the whole call (some members of it may have been written).
   */
  write(writes: MemberWrite[]): Promise<WriteResult[]>;
  /** Deletes relayed outbox fields; harmless when someone already did. */
  release(fields: OutboxField[]): Promise<void>;
  /**
   * Records each member's next deadline (null: none) in the shard of its input partition, tagged
   * with the version it was computed from: an older version's never replaces a newer one's.
   * Resolves once the replicas hold it.
   */
  indexDeadlines(items: DeadlineItem[]): Promise<void>;
  /**
   * Members of the given shards (the input partitions this process owns) whose deadline is at or
   * before `nowMs`, earliest first in each shard, at most `limit` in all.
   */
  dueMembers(nowMs: number, limit: number, shards: readonly number[]): Promise<string[]>;
}
