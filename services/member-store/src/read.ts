// The readers' side of the member store (the balance API, the CLI, the rebuild's checks, the
// tests): a member's state and version, or everything its hash holds (offsets, the outbox not
// yet relayed), its deadline, and the members of a key space. Read only, except seedMember and
// deleteKeysUnder, which seed and clear the key spaces of tests and tools.

import { encodeState, type MemberState } from "@creditflow/engine";
import type { Redis } from "ioredis";
import { MemberStoreError } from "./errors.ts";
import { globEscaped, type KeySpace } from "./keys.ts";
import { NodeRouter, type RedisClient } from "./route.ts";
import {
  decodeStoredState,
  isOutboxField,
  type OutboxField,
  parseLoaded,
  respCommands,
} from "./store.ts";

/** A member's state with the version it was written at (increments with each write). */
export interface StoredState {
  state: MemberState;
  version: number;
}

/** Everything a member's hash holds, decoded. */
export interface MemberSnapshot {
  userId: string;
  /** 0 when the member has never been written. */
  version: number;
  /** null when the member has never been written. */
  state: MemberState | null;
  /** The state as stored (engine's encodeState), null when never written. */
  stateText: string | null;
  /** The last applied offset per source partition, keyed by offsetField(topic, partition). */
  offsets: Map<string, bigint>;
  /** The writes whose ledger entries are not yet relayed, in write order. */
  outbox: OutboxField[];
  /** How many ledger entries `outbox` holds in all. */
  outboxEntries: number;
}

/** Members read (and seeded) per pipelined round trip. */
const MEMBERS_PER_READ = 1_000;

/** SCAN's COUNT hint for memberIds and deleteKeysUnder. */
const SCAN_COUNT = 1_000;

export class MemberReader {
  private readonly redis: RedisClient;
  private readonly router: NodeRouter;
  private readonly keys: KeySpace;

  constructor(redis: RedisClient, keys: KeySpace) {
    this.redis = redis;
    this.router = new NodeRouter(redis);
    this.keys = keys;
  }

  /**
   * One command per member (HGETALL, HKEYS), routed per node, one pipelined round trip per 1,000
   * members: each reply parsed by `parse`. A member whose command failed fails the read, named by
   * `failed(userId)`.
   */
  private async perMember<T>(
    command: "HGETALL" | "HKEYS",
    userIds: readonly string[],
    what: string,
    failed: (userId: string) => string,
    parse: (userId: string, reply: unknown) => T,
  ): Promise<Map<string, T>> {
    const out = new Map<string, T>();
    const name = command.toLowerCase();
    for (let i = 0; i < userIds.length; i += MEMBERS_PER_READ) {
      const round = userIds.slice(i, i + MEMBERS_PER_READ);
      const keys = round.map((userId) => this.keys.member(userId).member);
      const bytes = respCommands(keys.map((key) => [command, key]));
      const { answers } = await this.router.send(
        keys.map((key, j) => ({ key, name, bytes: bytes[j]! })),
        what,
      );
      round.forEach((userId, j) => {
        const [error, reply] = answers?.[j] ?? [new Error("pipeline discarded"), null];
        if (error !== null) {
          throw new MemberStoreError("redis_failed", failed(userId), { cause: error });
        }
        out.set(userId, parse(userId, reply));
      });
    }
    return out;
  }

  /** The member's state and version (one HMGET), or null when it has never been written. */
  async state(userId: string): Promise<StoredState | null> {
    let fields: (string | null)[];
    try {
      fields = await this.redis.hmget(this.keys.member(userId).member, "s", "v");
    } catch (cause) {
      throw new MemberStoreError("redis_failed", `read member ${userId}`, { cause });
    }
    const [text, version] = fields;
    if (text === null || text === undefined) return null;
    return { state: decodeStoredState(userId, text), version: Number(version ?? 0) };
  }

  /** The member's state as stored, not decoded (one HGET); null when never written. */
  async stateText(userId: string): Promise<string | null> {
    try {
      return await this.redis.hget(this.keys.member(userId).member, "s");
    } catch (cause) {
      throw new MemberStoreError("redis_failed", `read member ${userId}`, { cause });
    }
  }

  /** Everything the member's hash holds (one HGETALL); version 0 and no state when absent. */
  async member(userId: string): Promise<MemberSnapshot> {
    return (await this.members([userId])).get(userId)!;
  }

  /** Members as `member` reads them, one pipelined round trip per 1,000. */
  members(userIds: readonly string[]): Promise<Map<string, MemberSnapshot>> {
    return this.perMember(
      "HGETALL",
      userIds,
      "read members",
      (userId) => `read member ${userId}`,
      (userId, hash): MemberSnapshot => {
        const loaded = parseLoaded(userId, hash as Record<string, Buffer>);
        return {
          userId,
          version: loaded.version,
          state: loaded.state,
          stateText: loaded.stateText,
          offsets: loaded.offsets,
          outbox: loaded.leftovers,
          outboxEntries: loaded.leftovers.reduce((n, f) => n + f.count, 0),
        };
      },
    );
  }

  /**
   * How many writes of each member wait in its outbox, their entries not yet relayed (0 once all
   * are): the field names only (HKEYS), no state decoded, one round trip per 1,000 members.
   */
  outboxWrites(userIds: readonly string[]): Promise<Map<string, number>> {
    return this.perMember(
      "HKEYS",
      userIds,
      "read outboxes",
      (userId) => `read the outbox of ${userId}`,
      (_userId, fields) =>
        (fields as Buffer[]).filter((f) => isOutboxField(f.toString("utf8"))).length,
    );
  }

  /**
   * The ids of the key space's members, a SCAN batch at a time (a member may come twice); on a
   * cluster, each master's keys in turn.
   */
  async *memberIds(): AsyncGenerator<string[]> {
    for (const node of await this.router.masters()) {
      for await (const keys of scanKeys(node, this.keys.memberPattern)) {
        yield keys.map((k) => this.keys.userIdOf(k));
      }
    }
  }

  /** The deadline shards of the key space (their sorted sets), found by SCAN on every master. */
  async deadlineShards(): Promise<number[]> {
    const shards = new Set<number>();
    for (const node of await this.router.masters()) {
      for await (const keys of scanKeys(node, this.keys.deadlinePattern)) {
        for (const key of keys) {
          const s = this.keys.deadlineShardOf(key);
          if (s?.sortedSet) shards.add(s.shard);
        }
      }
    }
    return [...shards].sort((a, b) => a - b);
  }

  /**
   * The member's next deadline (epoch ms) in the sweeper's index, null when none is indexed: the
   * reader does not know the partitioning, so it asks every shard (tests and tools only).
   */
  async deadline(userId: string): Promise<number | null> {
    for (const shard of await this.deadlineShards()) {
      let score: string | null;
      try {
        score = await this.redis.zscore(this.keys.deadlines(shard), userId);
      } catch (cause) {
        throw new MemberStoreError("redis_failed", `read the deadline of ${userId}`, { cause });
      }
      if (score !== null) return Number(score);
    }
    return null;
  }

  /** How many members have a deadline at or before `atMs` (due to the sweeper), every shard. */
  async dueCount(atMs: number): Promise<number> {
    let due = 0;
    for (const shard of await this.deadlineShards()) {
      try {
        due += await this.redis.zcount(this.keys.deadlines(shard), "-inf", atMs);
      } catch (cause) {
        throw new MemberStoreError("redis_failed", "count due members", { cause });
      }
    }
    return due;
  }
}

/**
 * Writes members' states at `version` without the CAS, offsets or outbox: seeds the members of
 * tests and benchmarks as the consumer would have left them, one round trip per 1,000. Not for
 * live members (the consumer is their only writer, through MemberStore.write).
 */
export async function seedMembers(
  redis: RedisClient,
  keys: KeySpace,
  states: readonly MemberState[],
  version = 1,
): Promise<void> {
  const router = new NodeRouter(redis);
  for (let i = 0; i < states.length; i += MEMBERS_PER_READ) {
    const round = states.slice(i, i + MEMBERS_PER_READ);
    const memberKeys = round.map((state) => keys.member(state.userId).member);
    const bytes = respCommands(
      round.map((state, j) => [
        "HSET",
        memberKeys[j]!,
        "s",
        encodeState(state),
        "v",
        String(version),
      ]),
    );
    const { answers } = await router.send(
      memberKeys.map((key, j) => ({ key, name: "hset", bytes: bytes[j]! })),
      "seed members",
    );
    const failed = answers.find(([error]) => error !== null)?.[0];
    if (failed) throw new MemberStoreError("redis_failed", "seed members", { cause: failed });
  }
}

/** The keys of one node matching `pattern`, a SCAN batch at a time. */
async function* scanKeys(node: Redis, pattern: string): AsyncGenerator<string[]> {
  let cursor = "0";
  do {
    let keys: string[];
    try {
      [cursor, keys] = await node.scan(cursor, "MATCH", pattern, "COUNT", SCAN_COUNT);
    } catch (cause) {
      throw new MemberStoreError("redis_failed", `scan ${pattern}`, { cause });
    }
    if (keys.length > 0) yield keys;
  } while (cursor !== "0");
}

/**
 * Deletes every key whose name starts with `prefix` (a key space and whatever else lives under
 * its prefix): what a test or a benchmark does to start again, and what a rebuild test does to
 * lose Redis. Returns how many keys were deleted. On a cluster, every master's keys.
 */
export async function deleteKeysUnder(redis: RedisClient, prefix: string): Promise<number> {
  let deleted = 0;
  for (const node of await new NodeRouter(redis).masters()) {
    for await (const keys of scanKeys(node, `${globEscaped(prefix)}*`)) {
      try {
        // One UNLINK per key: on a cluster node, keys of different slots may not share one.
        const pipeline = node.pipeline();
        for (const key of keys) pipeline.unlink(key);
        for (const [error, n] of (await pipeline.exec()) ?? []) {
          if (error) throw error;
          deleted += n as number;
        }
      } catch (cause) {
        throw new MemberStoreError("redis_failed", `delete the keys under ${prefix}`, { cause });
      }
    }
  }
  return deleted;
}
