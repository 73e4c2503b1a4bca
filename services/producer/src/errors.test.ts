// Goal: the README documents every error code of the producer library with whether a retry may
// help, and no code the library does not have: a test fails when code and docs drift.
import { CreditflowError } from "@creditflow/engine";
import { itDocumentsEachCode } from "@creditflow/engine/testing/error-docs";
import { describe, expect, it } from "vitest";
import { PRODUCER_ERROR_CODES, ProducerError } from "./errors.ts";

describe("ProducerError", () => {
  itDocumentsEachCode(PRODUCER_ERROR_CODES, new URL("../README.md", import.meta.url));

  it("is a CreditflowError naming the first field at fault and keeping the cause", () => {
    const fields = [
      { field: "events.3.inputTokens", code: "range" as const, message: "must be >= 0" },
    ];
    const invalid = new ProducerError("invalid_input", "events.3.inputTokens: must be >= 0", {
      fields,
    });
    expect(invalid).toBeInstanceOf(CreditflowError);
    expect([invalid.name, invalid.field, invalid.retryable, invalid.fields]).toEqual([
      "ProducerError",
      "events.3.inputTokens",
      false,
      fields,
    ]);
    const cause = new Error("broker down");
    const failed = new ProducerError("kafka_failed", "not acknowledged", { cause });
    expect([failed.retryable, failed.cause, failed.field]).toEqual([true, cause, undefined]);
  });
});
