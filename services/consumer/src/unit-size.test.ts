import { describe, expect, it } from "vitest";
import { UnitSizer } from "./unit-size.ts";

describe("UnitSizer", () => {
  it("starts small, then sizes units to take about the target time", () => {
    const s = new UnitSizer(100_000, 5_000);
    expect(s.next()).toBe(500);
    s.observe(500, 50); // 10 records/ms
    expect(s.next()).toBe(50_000);
    s.observe(50_000, 5_000);
    expect(s.next()).toBe(50_000);
  });

  it("shrinks the unit when the machine slows down, and never past its bounds", () => {
    const s = new UnitSizer(100_000, 1_000);
    s.observe(100_000, 2_000); // 50/ms: capped at the maximum
    expect(s.next()).toBe(50_000);
    s.observe(50_000, 25_000); // 2/ms now: the average of 50 and 2
    expect(s.next()).toBe(26_000);
    for (let i = 0; i < 20; i++) s.observe(100, 100_000); // 0.001/ms, again and again
    expect(s.next()).toBe(500);
    s.observe(10, 0); // a unit faster than a millisecond counts as one
    expect(s.next()).toBeLessThanOrEqual(100_000);
  });

  it("keeps a maximum below the minimum", () => {
    const s = new UnitSizer(100, 1_000);
    expect(s.next()).toBe(100);
    s.observe(100, 1);
    expect(s.next()).toBe(100);
  });
});
