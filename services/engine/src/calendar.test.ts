// Goal: the integer calendar agrees with the platform's UTC calendar everywhere in range.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { addMonthsClamped } from "./calendar.ts";
import { anyTimeMs } from "./fixtures.ts";

/** The same rule through Date, as a reference. */
function addMonthsWithDate(anchorMs: number, months: number): number {
  const a = new Date(anchorMs);
  const month = a.getUTCMonth() + months;
  const lastDay = new Date(Date.UTC(a.getUTCFullYear(), month + 1, 0)).getUTCDate();
  const day = Math.min(a.getUTCDate(), lastDay);
  return Date.UTC(
    a.getUTCFullYear(),
    month,
    day,
    a.getUTCHours(),
    a.getUTCMinutes(),
    a.getUTCSeconds(),
    a.getUTCMilliseconds(),
  );
}

describe("addMonthsClamped", () => {
  it("equals the Date-based rule for any time from 1970 to 2200 and any month count", () => {
    fc.assert(
      fc.property(anyTimeMs, fc.integer({ min: 0, max: 600 }), (at, n) => {
        expect(addMonthsClamped(at, n)).toBe(addMonthsWithDate(at, n));
      }),
      { numRuns: 5000 },
    );
  });

  it("handles the month ends and leap years", () => {
    for (const day of [28, 29, 30, 31]) {
      for (let m = 0; m < 12; m++) {
        const at = Date.UTC(2027, m, Math.min(day, 28 + (day - 28)), 23, 59, 59, 999);
        for (let n = 0; n < 30; n++) expect(addMonthsClamped(at, n)).toBe(addMonthsWithDate(at, n));
      }
    }
  });
});
