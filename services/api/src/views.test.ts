// Goal: credits shown at the edge are exact decimal strings of integer micro-credits.
import { describe, expect, it } from "vitest";
import { formatCredits } from "./views.ts";

describe("formatCredits", () => {
  it("writes micro-credits as exact decimals without trailing zeros", () => {
    expect(formatCredits(0)).toBe("0");
    expect(formatCredits(5_000_000)).toBe("5");
    expect(formatCredits(98_012_000)).toBe("98.012");
    expect(formatCredits(1)).toBe("0.000001");
    expect(formatCredits(-250)).toBe("-0.00025");
    expect(formatCredits(10_000_000 * 1_000_000)).toBe("10000000");
  });
});
