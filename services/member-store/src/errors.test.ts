// Goal: every error code of the member store is documented in its README with whether a retry
// may help, and only those (a test fails when code and docs drift); each error keeps its cause.
import { CreditflowError } from "@creditflow/engine";
import { errorDocsDrift } from "@creditflow/engine/testing/error-docs";
import { describe, expect, it } from "vitest";
import { MEMBER_STORE_ERROR_CODES, MemberStoreError } from "./errors.ts";
import { connectRedis } from "./route.ts";

describe("MemberStoreError", () => {
  it("has its codes documented in the README with their retryable, and only those", () => {
    expect(
      errorDocsDrift(MEMBER_STORE_ERROR_CODES, new URL("../README.md", import.meta.url)),
    ).toEqual([]);
  });

  it("says whether a retry may help, keeping the cause", () => {
    const cause = new Error("ECONNRESET");
    const e = new MemberStoreError("redis_failed", "load members", { cause });
    expect(e).toBeInstanceOf(CreditflowError);
    expect([e.name, e.code, e.retryable, e.cause]).toEqual([
      "MemberStoreError",
      "redis_failed",
      true,
      cause,
    ]);
    expect(new MemberStoreError("state_corrupt", "x").retryable).toBe(false);
  });

  it("names the field of a bad target", () => {
    expect(() => connectRedis({ redisClusterNodes: ["nohost"] })).toThrow(
      expect.objectContaining({ code: "invalid_target", field: "redisClusterNodes" }),
    );
  });
});
