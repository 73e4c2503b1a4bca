// Goal: the rebuild's error codes are the README's errors table (a test fails when code and docs
// drift), and a limit out of range is refused by name before anything is read or written.
import { CreditflowError } from "@creditflow/engine";
import { itDocumentsEachCode, itKeepsEachCode } from "@creditflow/engine/testing/error-docs";
import { describe, expect, it } from "vitest";
import { REBUILD_ERROR_CODES, RebuildError } from "./errors.ts";
import { type RebuildOptions, rebuildRedis } from "./rebuild.ts";

describe("RebuildError", () => {
  itDocumentsEachCode(REBUILD_ERROR_CODES, new URL("../README.md", import.meta.url));
  itKeepsEachCode(RebuildError, REBUILD_ERROR_CODES);

  it("refuses a limit out of range naming it, before any connection", async () => {
    const options = { limits: { membersPerRound: 0 } } as RebuildOptions;
    const refused = rebuildRedis(options);
    await expect(refused).rejects.toBeInstanceOf(RebuildError);
    await expect(refused).rejects.toBeInstanceOf(CreditflowError);
    await expect(refused).rejects.toMatchObject({
      code: "invalid_limits",
      field: "limits.membersPerRound",
      retryable: false,
      message: "limits.membersPerRound: must be a whole number > 0",
    });
  });
});
