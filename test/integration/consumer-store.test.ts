// Goal: the consumer's member write (its own protocol bytes for WRITE_MEMBER, store.ts of
// @creditflow/member-store) goes through against the real Redis, refuses a stale version, and
// still goes through once Redis has lost its scripts (a restart, SCRIPT FLUSH): Redis answers
// NOSCRIPT, nothing ran, the store loads the script and sends those writes again. What it wrote
// reads back through the read model: state, version, offsets, the outbox byte for byte. Deadlines
// go into the shard of their member (no key holds every member), and the single index of earlier
// versions moves into the shards, a newer version's deadline winning.

import { encodeState, openMember } from "@creditflow/engine";
import {
  keySpace,
  MemberReader,
  MemberStore,
  type MemberWrite,
  offsetField,
  outboxValues,
} from "@creditflow/member-store";
import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { storeWithoutRelay } from "../../services/consumer/testing/harness.ts";
import { fixture } from "../support/fixture.ts";

const fx = fixture(import.meta.url);
const { iso, config } = fx;
/** The single Redis itself: SCRIPT FLUSH and the earlier single deadline index are node-wide. */
const redis = new Redis(fx.urls.redisUrl);
fx.onCleanup(() => redis.disconnect());
const store = storeWithoutRelay(redis, iso.keyPrefix);
const NOW_MS = Date.UTC(2026, 0, 1);

/** The member opened at its n-th millisecond: a real engine state, another for each n. */
const stateText = (userId: string, n: number) =>
  encodeState(openMember(userId, NOW_MS + n, { config, nowMs: NOW_MS + n }).state);

const write = (userId: string, expectedVersion: number, n: number): MemberWrite => ({
  userId,
  expectedVersion,
  stateText: stateText(userId, n),
  offsets: new Map([[offsetField("usage", 3), BigInt(100 + n)]]),
  outbox: [Buffer.from([n, 0, 13, 10, 255]), Buffer.from(`entry ${n}`)],
});

describe("member store write", () => {
  it("writes, refuses a stale version, and writes again after Redis lost its scripts", async () => {
    const [a, b] = ["st-a", "st-b"];
    const first = await store.write([write(a, 0, 1), write(b, 0, 1)]);
    expect(first.map((r) => [r.userId, r.ok, r.ok ? r.version : r.currentVersion])).toEqual([
      [a, true, 1],
      [b, true, 1],
    ]);
    const stale = await store.write([write(a, 0, 2)]);
    expect(stale).toEqual([{ ok: false, userId: a, currentVersion: 1 }]);

    await redis.script("FLUSH");
    const second = await store.write([write(a, 1, 2), write(b, 1, 2)]);
    expect(second.map((r) => [r.userId, r.ok, r.ok ? r.version : r.currentVersion])).toEqual([
      [a, true, 2],
      [b, true, 2],
    ]);

    const m = await new MemberReader(redis, keySpace(iso.keyPrefix)).member(a);
    expect(m.version).toBe(2);
    expect(m.stateText).toBe(write(a, 1, 2).stateText);
    expect(m.state?.userId).toBe(a);
    expect(m.offsets).toEqual(new Map([[offsetField("usage", 3), 102n]]));
    // Nothing relayed: both writes' entries wait in the outbox, in write order, byte for byte.
    expect(m.outbox.map(outboxValues)).toEqual([write(a, 0, 1).outbox, write(a, 1, 2).outbox]);
    expect(m.outboxEntries).toBe(4);
  });
});

describe("deadline index", () => {
  it("indexes each member in its shard and moves the earlier single index into the shards", async () => {
    const keys = keySpace(`${iso.keyPrefix}dl:`);
    const sharded = new MemberStore(
      redis,
      keys,
      { membersPerRound: 2, deadlineShardOf: (userId) => Number(userId.slice(1)) % 3 },
      (r) => Buffer.from(JSON.stringify(r)),
    );
    await sharded.indexDeadlines([
      { userId: "d1", version: 4, deadlineMs: 1_000 },
      { userId: "d2", version: 1, deadlineMs: 2_000 },
      { userId: "d4", version: 1, deadlineMs: 4_000 },
    ]);
    expect(await redis.zrange(keys.deadlines(1), 0, -1)).toEqual(["d1", "d4"]);
    expect(await redis.zrange(keys.deadlines(2), 0, -1)).toEqual(["d2"]);
    expect(await sharded.dueMembers(3_000, 10, [1])).toEqual(["d1"]);
    expect(await sharded.dueMembers(5_000, 10, [0, 2])).toEqual(["d2"]);

    // The index of earlier versions: d1 at an older version (the shard's newer deadline stays),
    // d3 only there.
    const old = keys.unshardedDeadlines;
    await redis.zadd(old.deadlines, 500, "d1", 3_000, "d3");
    await redis.hset(old.versions, "d1", 2, "d3", 7);
    expect(await sharded.moveUnshardedDeadlines()).toBe(2);
    expect(await redis.exists(old.deadlines, old.versions)).toBe(0);
    const reader = new MemberReader(redis, keys);
    expect(await reader.deadline("d1")).toBe(1_000);
    expect(await reader.deadline("d3")).toBe(3_000);
    expect(await redis.hget(keys.deadlineVersions(0), "d3")).toBe("7");
    expect(await reader.dueCount(3_000)).toBe(3);
    expect(await reader.deadlineShards()).toEqual([0, 1, 2]);
  });
});
