import { describe, expect, it } from "vitest";
import { fitDeadLetter, sendChunks } from "./relay.ts";

const msg = (bytes: number) => ({ key: "u1", value: Buffer.alloc(bytes, 1) });

describe("sendChunks", () => {
  it("keeps order and cuts by count", () => {
    const messages = Array.from({ length: 1_201 }, (_, i) => ({ key: `u${i}`, value: null }));
    const chunks = sendChunks(messages);
    expect(chunks.map((c) => c.length)).toEqual([500, 500, 201]);
    expect(chunks.flat()).toEqual(messages);
  });

  it("cuts by bytes so that no send reaches the broker's 1 MiB", () => {
    const chunks = sendChunks(Array.from({ length: 400 }, () => msg(2_550)));
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks) {
      const bytes = c.reduce((n, m) => n + m.value.length + 64, 0);
      expect(bytes).toBeLessThanOrEqual(900_000);
    }
    expect(chunks.flat().length).toBe(400);
  });

  it("sends a message alone when it is larger than a send", () => {
    const chunks = sendChunks([msg(10), msg(950_000), msg(10)]);
    expect(chunks.map((c) => c.length)).toEqual([1, 1, 1]);
  });
});

describe("fitDeadLetter", () => {
  it("leaves a letter that fits untouched", () => {
    const m = { ...msg(1_000), headers: { "cf-reason": "bad_frame" } };
    expect(fitDeadLetter(m)).toBe(m);
  });

  it("cuts the bytes of a letter over the limit and records the original length", () => {
    const m = {
      ...msg(1_048_400),
      headers: { "cf-reason": "bad_frame", "cf-detail": "x".repeat(500) },
    };
    const fitted = fitDeadLetter(m);
    expect(fitted.headers?.["cf-truncated"]).toBe("1048400");
    expect(fitted.value!.length).toBeLessThan(900_000);
    expect(fitted.value!.equals(m.value.subarray(0, fitted.value!.length))).toBe(true);
  });
});
