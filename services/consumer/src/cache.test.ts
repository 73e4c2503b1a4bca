// Goal: the member cache never holds what a failure made unsafe to trust: work that started
// before a clear() cannot put members back after it; otherwise newest version wins, LRU out.

import { describe, expect, it } from "vitest";
import { MemberCache } from "./cache.ts";

const member = (version: number) => ({ version, stateText: `s${version}`, offsets: new Map() });

describe("MemberCache", () => {
  it("keeps the newest version and drops the least recently used", () => {
    const cache = new MemberCache(2);
    cache.set("a", member(2));
    cache.set("a", member(1));
    expect(cache.get("a")?.version).toBe(2);
    cache.set("b", member(1));
    cache.get("a");
    cache.set("c", member(1));
    expect(cache.get("b")).toBeUndefined();
    expect(cache.get("a")?.version).toBe(2);
  });

  it("refuses members from work that started before a clear", () => {
    const cache = new MemberCache(10);
    const before = cache.generation;
    cache.set("a", member(1), before);
    cache.clear();
    cache.set("b", member(1), before);
    expect(cache.get("b")).toBeUndefined();
    expect(cache.size).toBe(0);
    cache.set("b", member(1), cache.generation);
    expect(cache.get("b")?.version).toBe(1);
  });
});
