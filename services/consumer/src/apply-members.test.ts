// Goal: a member is opened at its first record's time, never after the time it is processed.

import { describe, expect, it } from "vitest";
import { memberSignUpMs } from "./apply-members.ts";

describe("memberSignUpMs", () => {
  it("opens a member at its first record's time, never after processing time", () => {
    const usage = { type: "usage", eventAtMs: 100 } as never;
    expect(memberSignUpMs(usage, 500)).toBe(100);
    expect(memberSignUpMs(usage, 50)).toBe(50);
  });
});
