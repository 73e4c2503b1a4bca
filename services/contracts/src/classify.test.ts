// Goal: classifying (the consumer's, and the rebuild's) names what is wrong with a record that
// cannot be applied (the dead-letter reason an operator sees in `cf-reason`), and passes every
// valid record on with its position, without I/O.

import { readFileSync } from "node:fs";
import { parseRateCard } from "@creditflow/engine";
import { describe, expect, it } from "vitest";
import { classifyRecords, type RawRecord, type RecordDecoder } from "./classify.ts";
import { type UsageEventRecord, usageEventSchema } from "./schemas.ts";
import { frameWire, unframeWire } from "./wire.ts";

const rateCardPath = new URL("../../../deploy/config/rate-card.json", import.meta.url);
const config = {
  rateCard: parseRateCard(JSON.parse(readFileSync(rateCardPath, "utf8")), "rate-card.json"),
};
const SCHEMA_ID = 7;
/** A codec that knows one schema id (the fast path); any other id is unknown to its registry. */
const codec: RecordDecoder = {
  decodeKnown: (_kind: string, bytes: Buffer | null) => {
    const frame = unframeWire(bytes);
    if (!frame.ok) return { ok: false, reason: "bad_frame", detail: frame.reason };
    if (frame.schemaId !== SCHEMA_ID) return null;
    try {
      return { ok: true, value: usageEventSchema.type.fromBuffer(frame.body) };
    } catch (error) {
      return { ok: false, reason: "undecodable", detail: (error as Error).message };
    }
  },
  decode: async (_kind: string, bytes: Buffer | null) => {
    const frame = unframeWire(bytes);
    if (!frame.ok) return { ok: false, reason: "bad_frame", detail: frame.reason };
    return { ok: false, reason: "unknown_schema", detail: `schema id ${frame.schemaId}` };
  },
};

const good: UsageEventRecord = {
  eventId: "e1",
  userId: "u1",
  taskId: "t1",
  feature: "chat",
  taskKind: null,
  model: "kimi-k2",
  inputTokens: 100,
  outputTokens: 10,
  cachedInputTokens: 0,
  occurredAt: 1_764_000_000_000,
  service: "s",
};
const raw = (value: Buffer | null, key: string | null = "u1", offset = "5"): RawRecord => ({
  topic: "usage",
  partition: 2,
  offset,
  key: key === null ? null : Buffer.from(key),
  value,
});
const encode = (r: Partial<UsageEventRecord>) =>
  frameWire(SCHEMA_ID, usageEventSchema.type.toBuffer({ ...good, ...r }));

describe("classifyRecords", () => {
  it("passes a valid record on as an engine input with its position", async () => {
    const [c] = await classifyRecords([raw(encode({}))], "usage", codec, config.rateCard);
    expect(c).toMatchObject({
      ok: true,
      record: { topic: "usage", partition: 2, offset: 5n, input: { type: "usage", id: "e1" } },
    });
  });

  it("names the reason of each bad record, keeping order", async () => {
    const unknownSchema = encode({});
    unknownSchema.writeInt32BE(99, 1);
    const cases: Array<[RawRecord, string]> = [
      [raw(Buffer.from([9, 9, 9])), "bad_frame"],
      [raw(null), "bad_frame"],
      [raw(unknownSchema), "unknown_schema"],
      [raw(encode({}).subarray(0, 9)), "undecodable"],
      [raw(encode({ inputTokens: -1 })), "invalid_field"],
      [raw(encode({ feature: "teleport" })), "unknown_feature"],
      [raw(encode({ model: "nope" })), "unknown_model"],
      [raw(encode({ userId: "" }), ""), "missing_user"],
      [raw(encode({}), "someone-else"), "key_mismatch"],
      // The key compared byte by byte: same length, one byte off; no key at all.
      [raw(encode({}), "u2"), "key_mismatch"],
      [raw(encode({}), null), "key_mismatch"],
    ];
    const out = await classifyRecords(
      cases.map((c) => c[0]),
      "usage",
      codec,
      config.rateCard,
    );
    expect(out.map((c) => (c.ok ? "ok" : c.reason))).toEqual(cases.map((c) => c[1]));
    const negative = out[4]!;
    expect(!negative.ok && negative.detail).toContain("inputTokens");
  });
});
