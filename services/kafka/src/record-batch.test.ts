// Goal: the Produce requests our record-batch writer builds are, byte for byte, the ones
// @platformatic/kafka's own builder writes for the same records (batch header, CRC, varints,
// sequence numbers, partition order), so the broker sees nothing new; and our murmur2 is the
// library's (and so the Java client's) for every key.

import {
  murmur2 as libraryMurmur2,
  type MessageRecord,
  NumericMap,
  produceV11,
} from "@platformatic/kafka";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createProduceRequest } from "./kafka.ts";
import { murmur2 } from "./record-batch.ts";

const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));

const message = fc.record({
  key: fc.option(bytes(40), { nil: undefined }),
  value: bytes(3_000),
  partition: fc.integer({ min: 0, max: 40 }),
  // Timestamps around now, a few minutes apart at most (a batch's deltas).
  timestamp: fc.integer({ min: -300_000, max: 300_000 }).map((d) => 1_790_000_000_000n + BigInt(d)),
});

const copies = (ms: MessageRecord[]) => ms.map((m) => ({ ...m }));

describe("createProduceRequest", () => {
  it("writes the library's bytes for any records, producer id and sequences", () => {
    fc.assert(
      fc.property(
        fc.array(message, { minLength: 1, maxLength: 60 }),
        fc.bigInt({ min: -1n, max: 2n ** 40n }),
        fc.integer({ min: 0, max: 32_000 }),
        fc.array(fc.integer({ min: 0, max: 2_000_000_000 }), { minLength: 41, maxLength: 41 }),
        fc.constantFrom(-1, 0, 1),
        (records, producerId, producerEpoch, firstSequences, acks) => {
          const messages: MessageRecord[] = records.map((r) => ({ ...r, topic: "ledger" }));
          const sequences = new NumericMap();
          firstSequences.forEach((s, p) => {
            if (p % 3 !== 0) sequences.set(`ledger:${p}`, s);
          });
          const options = { compression: "none" as const, producerId, producerEpoch, sequences };
          const ours = createProduceRequest(acks, 30_000, copies(messages), options);
          const theirs = produceV11.createRequest(acks, 30_000, copies(messages), options);
          expect(ours.buffer.equals(theirs.buffer)).toBe(true);
          expect(ours.context.noResponse).toBe(theirs.context.noResponse);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("gives records without a timestamp the time of the request, as the library does", () => {
    const messages: MessageRecord[] = [
      { topic: "ledger", partition: 2, key: Buffer.from("u1"), value: Buffer.from("a") },
      { topic: "ledger", partition: 2, key: Buffer.from("u1"), value: Buffer.from("b") },
    ];
    const before = BigInt(Date.now());
    const ours = createProduceRequest(-1, 1_000, copies(messages), {}).buffer;
    const after = BigInt(Date.now());
    // First timestamp of the batch: after the 1+2+4 request header, topic array and name (1+7),
    // partition array (1), partition index (4), records length (varint, 1 byte here), base
    // offset (8), batch length, leader epoch, magic, crc (4+4+1+4), attributes (2), last delta (4).
    const firstTimestamp = ours.readBigInt64BE(7 + 8 + 1 + 4 + 1 + 8 + 13 + 2 + 4);
    expect(firstTimestamp >= before && firstTimestamp <= after).toBe(true);
  });

  it("leaves what it does not write to the library: headers, compression, several topics", () => {
    const withHeaders: MessageRecord[] = [
      {
        topic: "dead",
        partition: 0,
        key: Buffer.from("k"),
        value: Buffer.from("v"),
        headers: new Map([[Buffer.from("h"), Buffer.from("x")]]),
        timestamp: 1n,
      },
    ];
    const twoTopics: MessageRecord[] = [
      { topic: "a", partition: 0, value: Buffer.from("1"), timestamp: 5n },
      { topic: "b", partition: 1, value: Buffer.from("2"), timestamp: 5n },
    ];
    for (const ms of [withHeaders, twoTopics]) {
      const ours = createProduceRequest(1, 100, copies(ms), {}).buffer;
      expect(ours.equals(produceV11.createRequest(1, 100, copies(ms), {}).buffer)).toBe(true);
    }
    const gzip = { compression: "gzip" as const };
    const ours = createProduceRequest(1, 100, copies(twoTopics.slice(0, 1)), gzip).buffer;
    const theirs = produceV11.createRequest(1, 100, copies(twoTopics.slice(0, 1)), gzip).buffer;
    // gzip output carries no time; the same input gives the same bytes.
    expect(ours.equals(theirs)).toBe(true);
  });
});

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
