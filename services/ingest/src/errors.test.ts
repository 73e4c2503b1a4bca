// Goal: the README documents every error code of the ingest with its status and whether a retry
// may help, and no code the ingest does not have: a test fails when code and docs drift.
import { CreditflowError } from "@creditflow/engine";
import { errorDocsDrift } from "@creditflow/engine/testing/error-docs";
import { describe, expect, it } from "vitest";
import { INGEST_ERROR_CODES, INGEST_OPTION_ERROR_CODES, IngestOptionError } from "./errors.ts";

describe("INGEST_ERROR_CODES", () => {
  it("are the README's tables of codes, each with its status and retryable", () => {
    const readme = new URL("../README.md", import.meta.url);
    expect(errorDocsDrift({ ...INGEST_ERROR_CODES, ...INGEST_OPTION_ERROR_CODES }, readme)).toEqual(
      [],
    );
  });

  it("start-up failures are CreditflowErrors naming the field", () => {
    const error = new IngestOptionError("limits.maxBatchEvents", "must be >= 1");
    expect(error).toBeInstanceOf(CreditflowError);
    expect([error.name, error.code, error.field, error.retryable, error.message]).toEqual([
      "IngestOptionError",
      "invalid_options",
      "limits.maxBatchEvents",
      false,
      "limits.maxBatchEvents: must be >= 1",
    ]);
  });
});
