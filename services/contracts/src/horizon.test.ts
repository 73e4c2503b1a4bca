// Goal: the edge of the duplicate horizon is exact: an input whose own time is older than the
// horizon before now is too old, one at the edge or newer is not, and the error names its field.
import { DEFAULT_DEDUPE_HORIZON_MS } from "@creditflow/engine";
import { describe, expect, it } from "vitest";
import { formatHorizon, isOlderThanHorizon, tooOldError } from "./horizon.ts";

const NOW = Date.UTC(2026, 11, 7, 12);
const DAY = DEFAULT_DEDUPE_HORIZON_MS;

describe("isOlderThanHorizon", () => {
  it("is true only strictly before now - horizon", () => {
    expect(isOlderThanHorizon(NOW - DAY - 1, NOW, DAY)).toBe(true);
    expect(isOlderThanHorizon(NOW - DAY, NOW, DAY)).toBe(false);
    expect(isOlderThanHorizon(NOW - 1, NOW, DAY)).toBe(false);
    // An input from the future (a clock ahead of ours) is not too old.
    expect(isOlderThanHorizon(NOW + 60_000, NOW, DAY)).toBe(false);
    expect(isOlderThanHorizon(NOW - 1001, NOW, 1000)).toBe(true);
  });
});

describe("tooOldError", () => {
  it("names the field with the code too_old, or is null inside the horizon", () => {
    expect(tooOldError(NOW - DAY, NOW, DAY, "occurredAt")).toBeNull();
    const error = tooOldError(NOW - DAY - 1, NOW, DAY, "events.3.occurredAt");
    expect(error).toEqual({
      field: "events.3.occurredAt",
      code: "too_old",
      message: expect.stringContaining("older than the duplicate horizon (24 h before"),
    });
    expect(error!.message).toMatch(/^events\.3\.occurredAt 2026-12-06T11:59:59\.999Z /);
  });
});

describe("formatHorizon", () => {
  it("says the horizon in the largest whole unit", () => {
    expect(formatHorizon(DAY)).toBe("24 h");
    expect(formatHorizon(35 * DAY)).toBe("35 d");
    expect(formatHorizon(90 * 60 * 1000)).toBe("90 min");
    expect(formatHorizon(1000)).toBe("1 s");
    expect(formatHorizon(1500)).toBe("1.5 s");
  });
});
