// Goal: our murmur2 is the library's (and so the Java client's) for every key, so a member's
// records land on the partition every producer of the house picks.

import { murmur2 as libraryMurmur2 } from "@platformatic/kafka";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { murmur2 } from "./murmur2.ts";

const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));

describe("murmur2", () => {
  it("is the library's murmur2 for any bytes", () => {
    fc.assert(
      fc.property(bytes(64), (key) => {
        expect(murmur2(key)).toBe(libraryMurmur2(key) | 0);
      }),
      { numRuns: 2_000 },
    );
  });
});
