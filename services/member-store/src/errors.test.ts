// Goal: every error code of the member store is documented in its README with whether a retry
// may help, and only those (a test fails when code and docs drift); each error keeps its cause,
// and a bad target is refused naming its field.
import { itDocumentsEachCode, itKeepsEachCode } from "@creditflow/engine/testing/error-docs";
import { describe, expect, it } from "vitest";
import { MEMBER_STORE_ERROR_CODES, MemberStoreError } from "./errors.ts";
import { connectRedis } from "./route.ts";

describe("MemberStoreError", () => {
  itDocumentsEachCode(MEMBER_STORE_ERROR_CODES, new URL("../README.md", import.meta.url));
  itKeepsEachCode(MemberStoreError, MEMBER_STORE_ERROR_CODES);

  it("names the field of a bad target", () => {
    expect(() => connectRedis({ redisClusterNodes: ["nohost"] })).toThrow(
      expect.objectContaining({ code: "invalid_target", field: "redisClusterNodes" }),
    );
  });
});
