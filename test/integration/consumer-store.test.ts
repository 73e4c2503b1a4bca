// Goal: the consumer's member write (its own protocol bytes for WRITE_MEMBER, store.ts) goes
// through against the real Redis, refuses a stale version, and still goes through once Redis has
// lost its scripts (a restart, SCRIPT FLUSH): Redis answers NOSCRIPT, nothing ran, the store
// loads the script and sends those writes again.

import { keySpace, type MemberWrite, outboxEntries } from "@creditflow/consumer";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { storeWithoutRelay } from "../../services/consumer/testing/harness.ts";
import { isolation, stack } from "../support/stack.ts";

const iso = isolation(import.meta.url);
const urls = stack();
const redis = new Redis(urls.redisUrl);
const store = storeWithoutRelay(redis, iso.keyPrefix);

afterAll(() => {
  redis.disconnect();
});

const write = (userId: string, expectedVersion: number, n: number): MemberWrite => ({
  userId,
  expectedVersion,
  stateText: `{"state":${n},"text":"ü ✓"}`,
  offsets: new Map([["o:usage:3", BigInt(100 + n)]]),
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

    const hash = await redis.hgetallBuffer(keySpace(iso.keyPrefix).member(a).member);
    expect(hash.v?.toString()).toBe("2");
    expect(hash.s?.toString("utf8")).toBe(`{"state":2,"text":"ü ✓"}`);
    expect(hash["o:usage:3"]?.toString()).toBe("102");
    expect(
      Object.keys(hash)
        .filter((f) => f.startsWith("x:"))
        .sort(),
    ).toEqual(["x:1", "x:2"]);
    const entries = outboxEntries(a, "x:2", hash["x:2"]!);
    expect(entries.map((e) => e.value)).toEqual(write(a, 1, 2).outbox);
  });
});
