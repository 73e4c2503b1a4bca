// Goal: a write's ledger entries packed into one outbox field come back out whole and in order
// (any sizes, the empty entry included); a value cut short is refused, never read as fewer
// entries; and a field of the earlier one-entry-per-field layout still reads as its one entry.
// The member writes' own protocol bytes (respCommands) are what the Redis protocol says, for
// any arguments (text of several bytes per character, binary, empty).

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MemberStoreError } from "./errors.ts";
import {
  outboxEntries,
  outboxValues,
  packOutbox,
  readOutboxField,
  respCommands,
  unpackOutbox,
} from "./store.ts";

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
          expect(() => outboxEntries("u1", "x:3", packed.subarray(0, cut))).toThrow(
            MemberStoreError,
          );
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

  it("reads a field as one relay item: its entries, their count, either layout", () => {
    const a = Buffer.from("first");
    const b = Buffer.from("second");
    const field = readOutboxField("u1", "x:7", packOutbox([a, b]));
    expect([field.userId, field.field, field.count]).toEqual(["u1", "x:7", 2]);
    expect(outboxValues(field).map(String)).toEqual(["first", "second"]);
    const legacy = readOutboxField("u1", "x:7:4", a);
    expect([legacy.field, legacy.count, outboxValues(legacy).map(String)]).toEqual([
      "x:7:4",
      1,
      ["first"],
    ]);
    expect(() => readOutboxField("u1", "x:8", packOutbox([a]).subarray(0, 6))).toThrow(
      MemberStoreError,
    );
    expect(() => outboxValues({ ...field, count: 3 })).toThrow(MemberStoreError);
  });
});

/** The Redis protocol's array of bulk strings, written the plain way. */
function respOf(args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const bytes = typeof a === "string" ? Buffer.from(a, "utf8") : a;
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from("\r\n"));
  }
  return Buffer.concat(parts);
}

describe("respCommands", () => {
  it("writes each command as the Redis protocol's array of bulk strings", () => {
    expect(respCommands([["EVALSHA", "ab", "1", Buffer.from([0, 13, 10, 255])]])[0]).toEqual(
      Buffer.from("*4\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n1\r\n$4\r\n\x00\r\n\xff\r\n", "latin1"),
    );
    const arg = fc.oneof(
      fc.string({ unit: "binary", maxLength: 40 }),
      fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
    );
    fc.assert(
      fc.property(fc.array(fc.array(arg, { maxLength: 12 }), { maxLength: 8 }), (commands) => {
        const views = respCommands(commands);
        expect(views.map((v) => v.toString("hex"))).toEqual(
          commands.map((c) => respOf(c).toString("hex")),
        );
      }),
    );
  });
});
