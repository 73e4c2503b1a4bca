// The writer's side of the member store: one hash per member (state, version, offsets and the
// outbox of ledger entries not yet relayed), written in one atomic Lua step with a compare-and-set
// on the member's version, plus the deadline index the sweeper reads. Every call is one pipelined
// round trip for many members (at most membersPerRound each; on a Redis Cluster one per node the
// round touches, route.ts). A write counts as done once minReplicaAcks replicas hold it (WAIT).
// The consumer writes through it, and so does the rebuild (a member written back with the
// consumer's own CAS).

import { createHash } from "node:crypto";
import type { LedgerEntryRecord } from "@creditflow/contracts";
import { decodeState, type MemberState } from "@creditflow/engine";
import { MemberStoreError } from "./errors.ts";
import type { KeySpace } from "./keys.ts";
import { NodeRouter, type Redirection, type RedisClient, type Routed } from "./route.ts";

/**
 * Compare-and-set on the version; then the state, version+1, the partition offsets and the new
 * ledger entries (the outbox field `x:<new version>`, packOutbox), all or nothing. ARGV: the expected
 * version, then the hash's (field, value) pairs as HSET takes them: `s`, `v` (the expected
 * version + 1, the only version the CAS lets through), the `o:` offsets and the `x:` entries, all
 * built by the client so that the script does no work per field. Returns {1, new version} or
 * {0, current version}. HSET takes its pairs in runs of 500: Lua's unpack has a stack limit of a
 * few thousand values.
 */
const WRITE_MEMBER = `
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local expected = tonumber(ARGV[1])
if v ~= expected then return {0, v} end
for i = 2, #ARGV, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
return {1, expected + 1}
`;

const WRITE_MEMBER_SHA = createHash("sha1").update(WRITE_MEMBER).digest("hex");

/**
 * Commands as the Redis protocol carries them (an array of bulk strings each), in one buffer:
 * a view into it per command.
 */
export function respCommands(commands: readonly (readonly (string | Buffer)[])[]): Buffer[] {
  const lengths: number[] = [];
  let size = 0;
  for (const args of commands) {
    size += 3 + String(args.length).length;
    for (const a of args) {
      const n = typeof a === "string" ? Buffer.byteLength(a) : a.length;
      lengths.push(n);
      size += 5 + String(n).length + n;
    }
  }
  const out = Buffer.allocUnsafe(size);
  const views: Buffer[] = [];
  let at = 0;
  let i = 0;
  for (const args of commands) {
    const start = at;
    at += out.write(`*${args.length}\r\n`, at, "latin1");
    for (const a of args) {
      const n = lengths[i++]!;
      at += out.write(`$${n}\r\n`, at, "latin1");
      at += typeof a === "string" ? out.write(a, at, n, "utf8") : a.copy(out, at);
      at += out.write("\r\n", at, "latin1");
    }
    views.push(out.subarray(start, at));
  }
  return views;
}

/**
 * The deadline index, newest member version wins: ARGV is (userId, version, deadline or '')
 * triples. An older version's deadline (a slow writer that lost a race) never overwrites a newer
 * one, so the index always ends at the deadline of the member's latest state.
 */
const INDEX_DEADLINES = `
for i = 1, #ARGV, 3 do
  local u = ARGV[i]
  local ver = tonumber(ARGV[i + 1])
  local cur = tonumber(redis.call('HGET', KEYS[2], u) or '-1')
  if ver >= cur then
    redis.call('HSET', KEYS[2], u, ver)
    if ARGV[i + 2] == '' then redis.call('ZREM', KEYS[1], u)
    else redis.call('ZADD', KEYS[1], ARGV[i + 2], u) end
  end
end
return 1
`;

const INDEX_DEADLINES_SHA = createHash("sha1").update(INDEX_DEADLINES).digest("hex");

/** A ledger entry written to a member's outbox and not yet deleted after its relay. */
export interface OutboxEntry {
  userId: string;
  /** Its field in the member hash: `x:<version that wrote it>`, shared by that write's entries. */
  field: string;
  /** Its place among the entries of the field. */
  index: number;
  /** The ledger record as the ledger topic carries it (Avro, Confluent wire format). */
  value: Buffer;
}

/**
 * A write's ledger entries as its member's outbox field holds them, relayed and deleted
 * together: one object per field, not per entry, for what waits on the relay.
 */
export interface OutboxField {
  userId: string;
  /** `x:<version that wrote it>`, or `x:<version>:<i>` of earlier versions (one entry). */
  field: string;
  /** The entries packed (packOutbox), each a ledger record as the ledger topic carries it. */
  packed: Buffer;
  /** How many entries `packed` holds. */
  count: number;
}

/** The entries of a field (views into it). */
export function outboxValues(f: OutboxField): Buffer[] {
  const values = unpackOutbox(f.packed);
  if (values === null || values.length !== f.count) {
    throw new MemberStoreError("state_corrupt", `outbox ${f.field} of ${f.userId} is cut short`);
  }
  return values;
}

/** Encodes a ledger record for the outbox and the ledger topic (AvroCodec.encode("ledger")). */
export type EncodeLedgerEntry = (record: LedgerEntryRecord) => Buffer;

/** Whether a field of the member hash is an outbox field (either layout). */
export function isOutboxField(field: string): boolean {
  return field.startsWith("x:");
}

/** The hash field of the ledger entries written at `version`. */
export function outboxField(version: number): string {
  return `x:${version}`;
}

/**
 * A write's ledger entries as one field value (one field to write and to delete per member and
 * unit, instead of one per entry): each entry's length (4 bytes, big-endian), then its bytes.
 */
export function packOutbox(values: readonly Buffer[]): Buffer {
  let size = 0;
  for (const v of values) size += 4 + v.length;
  const packed = Buffer.allocUnsafe(size);
  let at = 0;
  for (const v of values) {
    at = packed.writeUInt32BE(v.length, at);
    at += v.copy(packed, at);
  }
  return packed;
}

/** The entries of a packed outbox field (views into it, no copies); null when it is cut short. */
export function unpackOutbox(packed: Buffer): Buffer[] | null {
  const out: Buffer[] = [];
  let at = 0;
  while (at < packed.length) {
    if (at + 4 > packed.length) return null;
    const length = packed.readUInt32BE(at);
    at += 4;
    if (at + length > packed.length) return null;
    out.push(packed.subarray(at, at + length));
    at += length;
  }
  return out;
}

/**
 * An outbox field as stored: packed under `x:<version>`, or one entry under `x:<version>:<i>`,
 * the layout of earlier versions of the consumer (still read, so an upgrade relays what they
 * left; its entry is packed here like the others).
 */
export function readOutboxField(userId: string, field: string, value: Buffer): OutboxField {
  if (field.split(":").length === 3) {
    return { userId, field, packed: packOutbox([value]), count: 1 };
  }
  const values = unpackOutbox(value);
  if (values === null) {
    throw new MemberStoreError("state_corrupt", `outbox ${field} of ${userId} is cut short`);
  }
  return { userId, field, packed: value, count: values.length };
}

/** The entries of an outbox field as stored (readOutboxField), each with its place. */
export function outboxEntries(userId: string, field: string, value: Buffer): OutboxEntry[] {
  const legacyIndex = field.split(":")[2];
  return outboxValues(readOutboxField(userId, field, value)).map((v, i) => ({
    userId,
    field,
    index: legacyIndex === undefined ? i : Number(legacyIndex),
    value: v,
  }));
}

/** Orders outbox fields as written: by version, then (earlier layout) index. */
function outboxOrder(a: OutboxField, b: OutboxField): number {
  const [, av, ai] = a.field.split(":");
  const [, bv, bi] = b.field.split(":");
  return Number(av) - Number(bv) || Number(ai ?? 0) - Number(bi ?? 0);
}

/** A member as its hash holds it (MemberStore.load, MemberReader.member). */
export interface LoadedMember {
  userId: string;
  /** 0 when the member has never been written. */
  version: number;
  /** The state decoded; null when never written (and once applyRound has computed with it). */
  state: MemberState | null;
  /** The state as stored (`s`), null when never written. */
  stateText: string | null;
  /** Last applied offset per `o:<topic>:<partition>` field. */
  offsets: Map<string, bigint>;
  /** Entries a predecessor wrote but may not have relayed, in write order. */
  leftovers: OutboxField[];
}

export interface MemberWrite {
  userId: string;
  expectedVersion: number;
  /** The state to store, encoded (encodeState). */
  stateText: string;
  offsets: Map<string, bigint>;
  /**
   * The new ledger entries, encoded as the ledger topic carries them (encodeEntry): encoded as
   * they are made, so the records do not outlive the compute either.
   */
  outbox: Buffer[];
}

export type WriteResult =
  | { ok: true; userId: string; version: number; written: OutboxField | null }
  | { ok: false; userId: string; currentVersion: number };

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The replies, in order; any command's error is redis_failed. */
function repliesOf(answers: [Error | null, unknown][], what: string): unknown[] {
  return answers.map(([error, value]) => {
    if (error)
      throw new MemberStoreError("redis_failed", `${what}: ${error.message}`, { cause: error });
    return value;
  });
}

/** The writer's limits (the consumer's options name and check them at start-up). */
export interface MemberStoreLimits {
  /** Members per pipelined round trip (per node on a cluster). */
  membersPerRound: number;
  /**
   * Replicas that must hold a round's member writes (and the deadline index's) before the round
   * counts as done (WAIT); 0 on a single Redis with no replica, 1 on a cluster. Default 0.
   */
  minReplicaAcks?: number;
  /** How long WAIT waits for them; then the round fails (`replicas_behind`) and is redone. */
  replicaAckTimeoutMs?: number;
  /**
   * The deadline shard of a member: the partition of the input topics its records are on (the
   * producers' partitioner, keyPartition of @creditflow/kafka), so the consumer that owns the
   * partition sweeps it. Default: every member in shard 0 (one consumer, or tests).
   */
  deadlineShardOf?: (userId: string) => number;
  /** Told of every command sent again after a redirection or NOSCRIPT (metrics). */
  onRedirect?: (why: Redirection) => void;
}

export class MemberStore {
  readonly redis: RedisClient;
  private readonly router: NodeRouter;
  private readonly keys: KeySpace;
  /** Members per pipelined round trip. */
  readonly membersPerRound: number;
  readonly minReplicaAcks: number;
  readonly replicaAckTimeoutMs: number;
  readonly deadlineShardOf: (userId: string) => number;
  /** Encodes a ledger record for the outbox (and the ledger topic). */
  readonly encodeEntry: EncodeLedgerEntry;

  constructor(
    redis: RedisClient,
    keys: KeySpace,
    limits: MemberStoreLimits,
    encodeEntry: EncodeLedgerEntry,
  ) {
    this.redis = redis;
    this.router = new NodeRouter(redis, limits.onRedirect);
    this.keys = keys;
    this.membersPerRound = limits.membersPerRound;
    this.minReplicaAcks = limits.minReplicaAcks ?? 0;
    this.replicaAckTimeoutMs = limits.replicaAckTimeoutMs ?? 1_000;
    this.deadlineShardOf = limits.deadlineShardOf ?? (() => 0);
    this.encodeEntry = encodeEntry;
  }

  /** Loads members (their hash, outbox included), one round trip per membersPerRound. */
  async load(userIds: string[]): Promise<Map<string, LoadedMember>> {
    const out = new Map<string, LoadedMember>();
    for (const round of chunks(userIds, this.membersPerRound)) {
      const keys = round.map((userId) => this.keys.member(userId).member);
      const bytes = respCommands(keys.map((key) => ["HGETALL", key]));
      const { answers } = await this.router.send(
        keys.map((key, i) => ({ key, name: "hgetall", bytes: bytes[i]! })),
        "load members",
      );
      const results = repliesOf(answers, "load members");
      round.forEach((userId, i) => {
        out.set(userId, parseLoaded(userId, results[i] as Record<string, Buffer>));
      });
    }
    return out;
  }

  /**
   * Writes members with their CAS; a refused write reports the version it found. Returns once
   * minReplicaAcks replicas of every node written hold the round (else replicas_behind).
   */
  async write(writes: MemberWrite[]): Promise<WriteResult[]> {
    const out: WriteResult[] = [];
    for (const round of chunks(writes, this.membersPerRound)) {
      const packed = round.map((w) => (w.outbox.length > 0 ? packOutbox(w.outbox) : null));
      const bytes = respCommands(round.map((w, i) => this.writeArgs(w, packed[i]!)));
      const { answers, nodes } = await this.router.send(
        round.map((w, i) => ({
          key: this.keys.member(w.userId).member,
          name: "evalsha",
          bytes: bytes[i]!,
        })),
        "write members",
        WRITE_MEMBER,
      );
      const results = repliesOf(answers, "write members");
      // Before any of the round is reported written: a write no replica holds may be lost in a
      // failover, and nothing may be relayed or committed on the strength of it.
      await this.router.waitReplicas(
        nodes,
        this.minReplicaAcks,
        this.replicaAckTimeoutMs,
        "write members",
      );
      round.forEach((w, i) => {
        const r = results[i] as [number, number];
        if (r[0] === 1) {
          const version = r[1];
          const entries = packed[i]!;
          out.push({
            ok: true,
            userId: w.userId,
            version,
            written:
              entries === null
                ? null
                : {
                    userId: w.userId,
                    field: outboxField(version),
                    packed: entries,
                    count: w.outbox.length,
                  },
          });
        } else {
          out.push({ ok: false, userId: w.userId, currentVersion: r[1] });
        }
      });
    }
    return out;
  }

  /** EVALSHA of WRITE_MEMBER for one member, its arguments as the script's comment lists them. */
  private writeArgs(w: MemberWrite, outbox: Buffer | null): (string | Buffer)[] {
    const next = w.expectedVersion + 1;
    const args: (string | Buffer)[] = [
      "EVALSHA",
      WRITE_MEMBER_SHA,
      "1",
      this.keys.member(w.userId).member,
      String(w.expectedVersion),
      "s",
      w.stateText,
      "v",
      String(next),
    ];
    for (const [field, offset] of w.offsets) args.push(field, offset.toString());
    if (outbox !== null) args.push(outboxField(next), outbox);
    return args;
  }

  /**
   * Deletes relayed entries' fields from their members' hashes (harmless when someone already
   * did). A field's entries are always relayed together: written in one step, found together.
   * No replica acknowledgement: a release lost in a failover only has the same entries relayed
   * again (the same bytes, the same ids).
   */
  async release(fields: OutboxField[]): Promise<void> {
    const byUser = new Map<string, string[]>();
    for (const e of fields) {
      const fields = byUser.get(e.userId);
      if (fields === undefined) byUser.set(e.userId, [e.field]);
      else if (!fields.includes(e.field)) fields.push(e.field);
    }
    // Every round sent at once: one wait instead of one per round (a release is idempotent).
    await Promise.all(
      chunks([...byUser], this.membersPerRound).map(async (round) => {
        const keys = round.map(([userId]) => this.keys.member(userId).member);
        const bytes = respCommands(round.map(([, fields], i) => ["HDEL", keys[i]!, ...fields]));
        const { answers } = await this.router.send(
          keys.map((key, i) => ({ key, name: "hdel", bytes: bytes[i]! })),
          "release outbox",
        );
        repliesOf(answers, "release outbox");
      }),
    );
  }

  /**
   * Records each member's next deadline in its shard (deadlineShardOf), tagged with the version
   * it was computed from; returns once minReplicaAcks replicas hold it (a deadline lost in a
   * failover would leave its member unswept until its next write).
   */
  async indexDeadlines(items: DeadlineItem[]): Promise<void> {
    if (items.length === 0) return;
    const routed: Routed[] = [];
    for (const [shard, list] of this.byShard(items)) {
      for (const round of chunks(list, this.membersPerRound)) {
        const key = this.keys.deadlines(shard);
        const args: (string | Buffer)[] = [
          "EVALSHA",
          INDEX_DEADLINES_SHA,
          "2",
          key,
          this.keys.deadlineVersions(shard),
        ];
        for (const it of round) {
          args.push(
            it.userId,
            String(it.version),
            it.deadlineMs === null ? "" : String(it.deadlineMs),
          );
        }
        routed.push({ key, name: "evalsha", bytes: respCommands([args])[0]! });
      }
    }
    const { answers, nodes } = await this.router.send(routed, "index deadlines", INDEX_DEADLINES);
    repliesOf(answers, "index deadlines");
    await this.router.waitReplicas(
      nodes,
      this.minReplicaAcks,
      this.replicaAckTimeoutMs,
      "index deadlines",
    );
  }

  private byShard(items: DeadlineItem[]): Map<number, DeadlineItem[]> {
    const out = new Map<number, DeadlineItem[]>();
    for (const it of items) {
      const shard = this.deadlineShardOf(it.userId);
      const list = out.get(shard);
      if (list === undefined) out.set(shard, [it]);
      else list.push(it);
    }
    return out;
  }

  /**
   * Indexes deadlines of members written back after a loss of Redis (the rebuild): a version
   * left in the index from before the loss would outrank the rebuilt member's, so it goes first.
   */
  async reindexDeadlines(items: DeadlineItem[]): Promise<void> {
    if (items.length === 0) return;
    for (const [shard, list] of this.byShard(items)) {
      for (const round of chunks(list, this.membersPerRound)) {
        try {
          await this.redis.hdel(this.keys.deadlineVersions(shard), ...round.map((d) => d.userId));
        } catch (cause) {
          throw new MemberStoreError("redis_failed", "reindex deadlines", { cause });
        }
      }
    }
    await this.indexDeadlines(items);
  }

  /**
   * Moves the members of the earlier single deadline index into their shards (their versions
   * kept: a newer deadline already in a shard wins), then deletes it; a few thousand at a time.
   * Idempotent, harmless while consumers run. Returns how many members it moved.
   */
  async moveUnshardedDeadlines(): Promise<number> {
    const { deadlines, versions } = this.keys.unshardedDeadlines;
    let moved = 0;
    const batch = Math.max(this.membersPerRound, 1_000);
    try {
      for (;;) {
        const page = await this.redis.zrange(deadlines, 0, batch - 1, "WITHSCORES");
        if (page.length === 0) break;
        const ids: string[] = [];
        for (let i = 0; i < page.length; i += 2) ids.push(page[i]!);
        const found = await this.redis.hmget(versions, ...ids);
        await this.indexDeadlines(
          ids.map((userId, i) => ({
            userId,
            version: Number(found[i] ?? 0),
            deadlineMs: Number(page[2 * i + 1]),
          })),
        );
        await this.redis.zrem(deadlines, ...ids);
        moved += ids.length;
      }
      await this.redis.del(versions);
    } catch (cause) {
      if (cause instanceof MemberStoreError) throw cause;
      throw new MemberStoreError("redis_failed", "move the unsharded deadline index", { cause });
    }
    return moved;
  }

  /**
   * Members of the given deadline shards whose deadline is at or before `nowMs`, earliest first
   * in each shard, at most `limit` in all: the sweeper asks for the shards of the partitions it
   * owns.
   */
  async dueMembers(nowMs: number, limit: number, shards: readonly number[]): Promise<string[]> {
    const out: string[] = [];
    for (const shard of shards) {
      if (out.length >= limit) break;
      try {
        const due = await this.redis.zrangebyscore(
          this.keys.deadlines(shard),
          "-inf",
          nowMs,
          "LIMIT",
          0,
          limit - out.length,
        );
        for (const userId of due) out.push(userId);
      } catch (cause) {
        throw new MemberStoreError("redis_failed", "read due members", { cause });
      }
    }
    return out;
  }
}

/** A member's next deadline (null: none) as computed from its state at `version`. */
export interface DeadlineItem {
  userId: string;
  version: number;
  deadlineMs: number | null;
}

/** A member's `s` field decoded; state_corrupt naming the member when it does not decode. */
export function decodeStoredState(userId: string, stateText: string): MemberState {
  try {
    return decodeState(stateText);
  } catch (cause) {
    throw new MemberStoreError("state_corrupt", `state of ${userId} does not decode`, { cause });
  }
}

export function parseLoaded(userId: string, hash: Record<string, Buffer>): LoadedMember {
  let version = 0;
  let state: MemberState | null = null;
  let stateText: string | null = null;
  const offsets = new Map<string, bigint>();
  const leftovers: OutboxField[] = [];
  for (const field in hash) {
    const value = hash[field]!;
    if (field === "v") version = Number(value.toString("latin1"));
    else if (field === "s") {
      stateText = value.toString("utf8");
      state = decodeStoredState(userId, stateText);
    } else if (field.startsWith("o:")) offsets.set(field, BigInt(value.toString("latin1")));
    else if (isOutboxField(field)) leftovers.push(readOutboxField(userId, field, value));
  }
  leftovers.sort(outboxOrder);
  return { userId, version, state, stateText, offsets, leftovers };
}
