// Goal: a write's ledger entries packed into one outbox field come back out whole and in order
// (any sizes, the empty entry included); a value cut short is refused, never read as fewer
// entries; and a field of the earlier one-entry-per-field layout still reads as its one entry.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConsumerError } from "./errors.ts";
import { outboxEntries, packOutbox, unpackOutbox } from "./store.ts";

const entries = fc.array(
  fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)),
  { maxLength: 30 },
);

describe("packOutbox", () => {
  it("gives back the same entries in the same order", () => {
    fc.assert(
      fc.property(entries, (values) => {
        const back = unpackOutbox(packOutbox(values));
        expect(back?.map((b) => b.toString("hex"))).toEqual(values.map((v) => v.toString("hex")));
      }),
    );
  });

  it("refuses a value cut anywhere inside an entry", () => {
    fc.assert(
      fc.property(
        entries.filter((v) => v.length > 0),
        fc.nat(),
        (values, cutAt) => {
          const packed = packOutbox(values);
          const ends = new Set<number>();
          let at = 0;
          for (const v of values) {
            at += 4 + v.length;
            ends.add(at);
          }
          const cut = cutAt % packed.length;
          if (ends.has(cut) || cut === 0) return;
          expect(unpackOutbox(packed.subarray(0, cut))).toBeNull();
          expect(() => outboxEntries("u1", "x:3", packed.subarray(0, cut))).toThrow(ConsumerError);
        },
      ),
    );
  });

  it("numbers a field's entries and reads the earlier x:<version>:<i> layout", () => {
    const a = Buffer.from("first");
    const b = Buffer.from("second");
    const packed = outboxEntries("u1", "x:7", packOutbox([a, b]));
    expect(packed.map((e) => [e.userId, e.field, e.index, e.value.toString()])).toEqual([
      ["u1", "x:7", 0, "first"],
      ["u1", "x:7", 1, "second"],
    ]);
    const legacy = outboxEntries("u1", "x:7:4", a);
    expect(legacy.map((e) => [e.field, e.index, e.value.toString()])).toEqual([
      ["x:7:4", 4, "first"],
    ]);
  });
});
