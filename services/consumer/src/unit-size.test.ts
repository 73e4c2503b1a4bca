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

  it("ramps up at the pace of the fastest unit, not an average with the slow first one", () => {
    const s = new UnitSizer(100_000, 10_000);
    s.observe(500, 250); // 2/ms: a cold process, a unit of 500 members with a record each
    expect(s.next()).toBe(20_000);
    s.observe(20_000, 1_000); // 20/ms
    expect(s.next()).toBe(100_000);
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

  it("takes a batch's short tail along instead of leaving it for a unit of its own", () => {
    const s = new UnitSizer(100_000, 5_000);
    s.observe(40_000, 5_000); // 8 records/ms: 40,000 per unit
    expect(s.next(100_000)).toBe(40_000);
    expect(s.next(60_000)).toBe(40_000); // a tail of 20,000: half a unit, left
    expect(s.next(50_000)).toBe(50_000); // a tail of 10,000: a quarter, taken
    expect(s.next(50_001)).toBe(40_000);
    expect(s.next(300)).toBe(300);
    s.observe(100_000, 1_000); // 100/ms: units at the maximum
    expect(s.next(110_000)).toBe(100_000); // the tail would go past batchRecords: left
  });

  it("keeps a maximum below the minimum", () => {
    const s = new UnitSizer(100, 1_000);
    expect(s.next()).toBe(100);
    s.observe(100, 1);
    expect(s.next()).toBe(100);
  });
});
