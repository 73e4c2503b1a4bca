// Goal: every error code of the member store is documented in its README (a test fails when code
// and docs drift), and each error says whether a retry may help.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { MEMBER_STORE_ERROR_CODES, MemberStoreError } from "./errors.ts";

describe("errors", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  it("names every error code in the README", () => {
    for (const code of Object.keys(MEMBER_STORE_ERROR_CODES))
      expect(readme).toContain(`\`${code}\``);
  });
  it("says whether a retry may help, keeping the cause", () => {
    const cause = new Error("ECONNRESET");
    const e = new MemberStoreError("redis_failed", "load members", { cause });
    expect([e.code, e.retryable, e.cause]).toEqual(["redis_failed", true, cause]);
    expect(new MemberStoreError("state_corrupt", "x").retryable).toBe(false);
  });
});
