// Goal: every error code of the consumer is documented in its README with whether a retry may
// help, and only those (a test fails when code and docs drift); a ConsumerError is a
// CreditflowError keeping its cause.
import { CreditflowError } from "@creditflow/engine";
import { errorDocsDrift } from "@creditflow/engine/testing/error-docs";
import { describe, expect, it } from "vitest";
import { CONSUMER_ERROR_CODES, ConsumerError } from "./errors.ts";

describe("ConsumerError", () => {
  it("has its codes documented in the README with their retryable, and only those", () => {
    expect(errorDocsDrift(CONSUMER_ERROR_CODES, new URL("../README.md", import.meta.url))).toEqual(
      [],
    );
  });

  it("is a CreditflowError saying whether a retry may help, keeping the cause", () => {
    const cause = new Error("NOT_COORDINATOR");
    const error = new ConsumerError("kafka_failed", "commit 12", { cause });
    expect(error).toBeInstanceOf(CreditflowError);
    expect([error.name, error.code, error.retryable, error.cause]).toEqual([
      "ConsumerError",
      "kafka_failed",
      true,
      cause,
    ]);
    expect(new ConsumerError("invalid_config", "plans: cannot read").retryable).toBe(false);
  });
});
