// Goal: all keys of one member share its hash tag (one Redis Cluster slot for the atomic write),
// each deadline shard's keys share theirs (one tag per shard, none for every member), and a key
// read back by SCAN names its member or its shard.

import { describe, expect, it } from "vitest";
import { globEscaped, keySpace } from "./keys.ts";

describe("keys", () => {
  it("puts a member's hash (outbox included) under the member's hash tag", () => {
    const k = keySpace("cf:").member("u:42");
    expect(k.member.match(/\{([^}]*)\}/)?.[1]).toBe("u:42");
    const ks = keySpace("cf:");
    expect(ks.deadlines(3).match(/\{([^}]*)\}/)?.[1]).toBe("deadlines:3");
    expect(ks.deadlineVersions(3).match(/\{([^}]*)\}/)?.[1]).toBe("deadlines:3");
    expect(ks.deadlines(4)).not.toBe(ks.deadlines(3));
  });

  it("finds the shard of a deadline key", () => {
    const ks = keySpace("test:a1:");
    expect(ks.deadlineShardOf(ks.deadlines(11))).toEqual({ shard: 11, sortedSet: true });
    expect(ks.deadlineShardOf(ks.deadlineVersions(0))).toEqual({ shard: 0, sortedSet: false });
    expect(ks.deadlineShardOf(ks.member("deadlines:1").member)).toBeNull();
    expect(ks.deadlinePattern).toBe("test:a1:{deadlines:*}*");
  });

  it("finds the member of a key that the member pattern matches", () => {
    const ks = keySpace("test:a1:");
    expect(ks.userIdOf(ks.member("u:42.x-1").member)).toBe("u:42.x-1");
    expect(ks.memberPattern).toBe("test:a1:{*}:m");
    expect(globEscaped("a*b?[c]\\")).toBe("a\\*b\\?\\[c\\]\\\\");
  });
});
