// The consumer's Redis side: one hash and one outbox stream per member, written in one atomic
// Lua step with a compare-and-set on the member's version, plus the deadline index the sweeper
// reads. Every call is one pipelined round trip for many members (at most membersPerRound each).

import type { LedgerEntryRecord } from "@creditflow/contracts";
import { decodeState, type MemberState } from "@creditflow/engine";
import type { Redis } from "ioredis";
import { ConsumerError } from "./errors.ts";
import { type KeySpace, offsetField } from "./keys.ts";

/** Returns the member hash and the outbox's pending entries (oldest first). */
const LOAD_MEMBER = `
local h = redis.call('HGETALL', KEYS[1])
local o = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', ARGV[1])
return {h, o}
`;

/**
 * Compare-and-set on the version; then the state, version+1, the partition offsets and the new
 * ledger entries in the outbox, all or nothing. ARGV: expected version, state, n offsets,
 * n (field, offset) pairs, then one encoded ledger entry per argument.
 * Returns {1, new version, stream ids} or {0, current version}.
 */
const WRITE_MEMBER = `
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v ~= tonumber(ARGV[1]) then return {0, v} end
local n = tonumber(ARGV[3])
local args = {'s', ARGV[2], 'v', v + 1}
for i = 0, n - 1 do
  args[#args + 1] = ARGV[4 + 2 * i]
  args[#args + 1] = ARGV[5 + 2 * i]
end
redis.call('HSET', KEYS[1], unpack(args))
local ids = {}
for i = 4 + 2 * n, #ARGV do
  ids[#ids + 1] = redis.call('XADD', KEYS[2], '*', 'e', ARGV[i])
end
return {1, v + 1, ids}
`;

/** Deletes relayed outbox entries; an emptied outbox key goes away (memory per idle member). */
const RELEASE_OUTBOX = `
redis.call('XDEL', KEYS[1], unpack(ARGV))
if redis.call('XLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) end
return 1
`;

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

interface ScriptedRedis extends Redis {
  cfLoadMember(member: string, outbox: string, count: number): Promise<[string[], OutboxRaw[]]>;
  cfWriteMember(member: string, outbox: string, ...args: (string | number)[]): Promise<unknown>;
  cfReleaseOutbox(outbox: string, ...ids: string[]): Promise<unknown>;
  cfIndexDeadlines(zset: string, versions: string, ...args: (string | number)[]): Promise<unknown>;
}
type OutboxRaw = [string, string[]];

/** A ledger entry written to a member's outbox and not yet deleted after its relay. */
export interface OutboxEntry {
  userId: string;
  streamId: string;
  record: LedgerEntryRecord;
}

export interface LoadedMember {
  userId: string;
  /** 0 when the member has never been written. */
  version: number;
  state: MemberState | null;
  /** Last applied offset per `o:<topic>:<partition>` field. */
  offsets: Map<string, bigint>;
  /** Entries a predecessor wrote but may not have relayed. */
  leftovers: OutboxEntry[];
}

export interface MemberWrite {
  userId: string;
  expectedVersion: number;
  state: MemberState;
  stateText: string;
  offsets: Map<string, bigint>;
  entries: LedgerEntryRecord[];
}

export type WriteResult =
  | { ok: true; userId: string; version: number; written: OutboxEntry[] }
  | { ok: false; userId: string; currentVersion: number };

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

async function execPipeline(
  pipeline: ReturnType<Redis["pipeline"]>,
  what: string,
): Promise<unknown[]> {
  let results: [Error | null, unknown][] | null;
  try {
    results = await pipeline.exec();
  } catch (cause) {
    throw new ConsumerError("redis_failed", `${what}: pipeline failed`, { cause });
  }
  if (results === null) throw new ConsumerError("redis_failed", `${what}: pipeline discarded`);
  return results.map(([error, value]) => {
    if (error)
      throw new ConsumerError("redis_failed", `${what}: ${error.message}`, { cause: error });
    return value;
  });
}

export class MemberStore {
  readonly redis: ScriptedRedis;
  private readonly keys: KeySpace;
  private readonly membersPerRound: number;
  private readonly outboxReadEntries: number;

  constructor(
    redis: Redis,
    keys: KeySpace,
    limits: { membersPerRound: number; outboxReadEntries: number },
  ) {
    redis.defineCommand("cfLoadMember", { numberOfKeys: 2, lua: LOAD_MEMBER });
    redis.defineCommand("cfWriteMember", { numberOfKeys: 2, lua: WRITE_MEMBER });
    redis.defineCommand("cfReleaseOutbox", { numberOfKeys: 1, lua: RELEASE_OUTBOX });
    redis.defineCommand("cfIndexDeadlines", { numberOfKeys: 2, lua: INDEX_DEADLINES });
    this.redis = redis as ScriptedRedis;
    this.keys = keys;
    this.membersPerRound = limits.membersPerRound;
    this.outboxReadEntries = limits.outboxReadEntries;
  }

  /** Loads members (hash and pending outbox), one round trip per membersPerRound. */
  async load(userIds: string[]): Promise<Map<string, LoadedMember>> {
    const out = new Map<string, LoadedMember>();
    for (const round of chunks(userIds, this.membersPerRound)) {
      const pipeline = this.redis.pipeline() as unknown as ScriptedRedis;
      for (const userId of round) {
        const k = this.keys.member(userId);
        pipeline.cfLoadMember(k.member, k.outbox, this.outboxReadEntries);
      }
      const results = await execPipeline(
        pipeline as unknown as ReturnType<Redis["pipeline"]>,
        "load members",
      );
      round.forEach((userId, i) => {
        out.set(userId, parseLoaded(userId, results[i] as [string[], OutboxRaw[]]));
      });
    }
    return out;
  }

  /** Writes members with their CAS; a refused write reports the version it found. */
  async write(writes: MemberWrite[]): Promise<WriteResult[]> {
    const out: WriteResult[] = [];
    for (const round of chunks(writes, this.membersPerRound)) {
      const pipeline = this.redis.pipeline() as unknown as ScriptedRedis;
      for (const w of round) {
        const k = this.keys.member(w.userId);
        const args: (string | number)[] = [w.expectedVersion, w.stateText, w.offsets.size];
        for (const [field, offset] of w.offsets) args.push(field, offset.toString());
        for (const e of w.entries) args.push(JSON.stringify(e));
        pipeline.cfWriteMember(k.member, k.outbox, ...args);
      }
      const results = await execPipeline(
        pipeline as unknown as ReturnType<Redis["pipeline"]>,
        "write members",
      );
      round.forEach((w, i) => {
        const r = results[i] as [number, number, string[]?];
        if (r[0] === 1) {
          const ids = r[2] ?? [];
          out.push({
            ok: true,
            userId: w.userId,
            version: r[1],
            written: w.entries.map((record, j) => ({
              userId: w.userId,
              streamId: ids[j]!,
              record,
            })),
          });
        } else {
          out.push({ ok: false, userId: w.userId, currentVersion: r[1] });
        }
      });
    }
    return out;
  }

  /** Deletes relayed entries from their outboxes (harmless when someone already did). */
  async release(entries: OutboxEntry[]): Promise<void> {
    const byUser = new Map<string, string[]>();
    for (const e of entries) {
      const ids = byUser.get(e.userId);
      if (ids === undefined) byUser.set(e.userId, [e.streamId]);
      else ids.push(e.streamId);
    }
    for (const round of chunks([...byUser], this.membersPerRound)) {
      const pipeline = this.redis.pipeline() as unknown as ScriptedRedis;
      for (const [userId, ids] of round)
        pipeline.cfReleaseOutbox(this.keys.member(userId).outbox, ...ids);
      await execPipeline(pipeline as unknown as ReturnType<Redis["pipeline"]>, "release outbox");
    }
  }

  /** Records each member's next deadline, tagged with the version it was computed from. */
  async indexDeadlines(
    items: { userId: string; version: number; deadlineMs: number | null }[],
  ): Promise<void> {
    if (items.length === 0) return;
    const pipeline = this.redis.pipeline() as unknown as ScriptedRedis;
    for (const round of chunks(items, this.membersPerRound)) {
      const args: (string | number)[] = [];
      for (const it of round) args.push(it.userId, it.version, it.deadlineMs ?? "");
      pipeline.cfIndexDeadlines(this.keys.deadlines, this.keys.deadlineVersions, ...args);
    }
    await execPipeline(pipeline as unknown as ReturnType<Redis["pipeline"]>, "index deadlines");
  }

  /** Members whose deadline is at or before `nowMs`, earliest first. */
  async dueMembers(nowMs: number, limit: number): Promise<string[]> {
    try {
      return await this.redis.zrangebyscore(this.keys.deadlines, "-inf", nowMs, "LIMIT", 0, limit);
    } catch (cause) {
      throw new ConsumerError("redis_failed", "read due members", { cause });
    }
  }
}

function parseLoaded(userId: string, raw: [string[], OutboxRaw[]]): LoadedMember {
  const [flat, outbox] = raw;
  let version = 0;
  let state: MemberState | null = null;
  const offsets = new Map<string, bigint>();
  for (let i = 0; i < flat.length; i += 2) {
    const field = flat[i]!;
    const value = flat[i + 1]!;
    if (field === "v") version = Number(value);
    else if (field === "s") {
      try {
        state = decodeState(value);
      } catch (cause) {
        throw new ConsumerError("state_corrupt", `state of ${userId} does not decode`, { cause });
      }
    } else if (field.startsWith("o:")) offsets.set(field, BigInt(value));
  }
  const leftovers = outbox.map(([streamId, fields]) => {
    const json = fields[fields.indexOf("e") + 1];
    if (json === undefined)
      throw new ConsumerError("state_corrupt", `outbox entry ${streamId} of ${userId} has no e`);
    return { userId, streamId, record: JSON.parse(json) as LedgerEntryRecord };
  });
  return { userId, version, state, offsets, leftovers };
}

export { offsetField };
