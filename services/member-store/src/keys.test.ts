// Goal: all keys of one member share its hash tag (one Redis Cluster slot for the atomic write),
// the deadline index's keys share theirs, and a member's key read back by SCAN names its member.

import { describe, expect, it } from "vitest";
import { globEscaped, keySpace } from "./keys.ts";

describe("keys", () => {
  it("puts a member's hash (outbox included) under the member's hash tag", () => {
    const k = keySpace("cf:").member("u:42");
    expect(k.member.match(/\{([^}]*)\}/)?.[1]).toBe("u:42");
    const ks = keySpace("cf:");
    expect(ks.deadlines.match(/\{([^}]*)\}/)?.[1]).toBe(
      ks.deadlineVersions.match(/\{([^}]*)\}/)?.[1],
    );
  });

  it("finds the member of a key that the member pattern matches", () => {
    const ks = keySpace("test:a1:");
    expect(ks.userIdOf(ks.member("u:42.x-1").member)).toBe("u:42.x-1");
    expect(ks.memberPattern).toBe("test:a1:{*}:m");
    expect(globEscaped("a*b?[c]\\")).toBe("a\\*b\\?\\[c\\]\\\\");
  });
});
