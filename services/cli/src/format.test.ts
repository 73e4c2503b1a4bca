// Goal: credits typed and printed by the CLI convert to and from integer micro-credits exactly.
import { describe, expect, it } from "vitest";
import { credits, creditsToMicros } from "./format.ts";

describe("credit formatting", () => {
  it("prints micro-credits as credits without float error", () => {
    expect(credits(1_500_000)).toBe("1.5");
    expect(credits(1)).toBe("0.000001");
    expect(credits(-2_000_000)).toBe("-2");
    expect(credits(0)).toBe("0");
  });

  it("reads credits into micro-credits, naming the field when it cannot", () => {
    expect(creditsToMicros("1.5", "--credits")).toBe(1_500_000);
    expect(creditsToMicros("0.000001", "--credits")).toBe(1);
    expect(() => creditsToMicros("1.2345678", "--credits")).toThrow("--credits");
    expect(() => creditsToMicros("-1", "--credits")).toThrow("--credits");
    expect(() => creditsToMicros("0", "--credits")).toThrow("--credits: must be more than 0");
  });
});
