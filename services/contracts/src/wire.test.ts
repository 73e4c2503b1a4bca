// Goal: the Confluent framing round-trips and every malformed header is named, never thrown.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { frameWire, unframeWire } from "./wire.ts";

describe("Confluent wire format", () => {
  it("round-trips any schema id and body", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 0x7fffffff }), fc.uint8Array(), (id, body) => {
        const frame = unframeWire(frameWire(id, Buffer.from(body)));
        expect(frame).toEqual({ ok: true, schemaId: id, body: Buffer.from(body) });
      }),
    );
  });

  it("names what is wrong with a bad header", () => {
    expect(unframeWire(Buffer.alloc(0))).toMatchObject({ ok: false, reason: "empty" });
    expect(unframeWire(null)).toMatchObject({ ok: false, reason: "empty" });
    expect(unframeWire(Buffer.from([1, 0, 0, 0, 1]))).toMatchObject({
      ok: false,
      reason: "bad_magic_byte",
    });
    expect(unframeWire(Buffer.from([0, 0, 0]))).toMatchObject({ ok: false, reason: "too_short" });
    expect(unframeWire(Buffer.from([0, 0, 0, 0, 0]))).toMatchObject({
      ok: false,
      reason: "bad_schema_id",
    });
  });

  it("refuses a schema id that is not an int32", () => {
    expect(() => frameWire(-1, Buffer.alloc(0))).toThrow(RangeError);
    expect(() => frameWire(2 ** 31, Buffer.alloc(0))).toThrow(RangeError);
  });
});
