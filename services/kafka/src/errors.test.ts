// Goal: the README documents every error code of the Kafka plumbing with whether a retry may
// help, and no code the package does not have: a test fails when code and docs drift.
import { CreditflowError } from "@creditflow/engine";
import { errorDocsDrift } from "@creditflow/engine/testing/error-docs";
import { describe, expect, it } from "vitest";
import { KAFKA_ERROR_CODES, KafkaError } from "./errors.ts";

describe("KafkaError", () => {
  it("has its codes documented in the README with their retryable, and only those", () => {
    expect(errorDocsDrift(KAFKA_ERROR_CODES, new URL("../README.md", import.meta.url))).toEqual([]);
  });

  it("is a CreditflowError saying whether a retry may help and keeping the cause", () => {
    const cause = new Error("connect ECONNREFUSED 127.0.0.1:8081");
    const failed = new KafkaError("registry_failed", "could not fetch schema 7", { cause });
    expect(failed).toBeInstanceOf(CreditflowError);
    expect([failed.name, failed.code, failed.retryable, failed.cause, failed.field]).toEqual([
      "KafkaError",
      "registry_failed",
      true,
      cause,
      undefined,
    ]);
    expect(new KafkaError("no_partitions", "topic t has no partitions").retryable).toBe(false);
  });
});
