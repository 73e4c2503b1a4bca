// Goal: the consumer's member write (its own protocol bytes for WRITE_MEMBER, store.ts of
// @creditflow/member-store) goes through against the real Redis, refuses a stale version, and
// still goes through once Redis has lost its scripts (a restart, SCRIPT FLUSH): Redis answers
// NOSCRIPT, nothing ran, the store loads the script and sends those writes again. What it wrote
// reads back through the read model: state, version, offsets, the outbox byte for byte.

import { encodeState, openMember } from "@creditflow/engine";
import {
  keySpace,
  MemberReader,
  type MemberWrite,
  offsetField,
  outboxValues,
} from "@creditflow/member-store";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig, storeWithoutRelay } from "../../services/consumer/testing/harness.ts";
import { isolation, stack } from "../support/stack.ts";

const iso = isolation(import.meta.url);
const urls = stack();
const redis = new Redis(urls.redisUrl);
const store = storeWithoutRelay(redis, iso.keyPrefix);
const config = loadConfig();
const NOW_MS = Date.UTC(2026, 0, 1);

afterAll(() => {
  redis.disconnect();
});

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
