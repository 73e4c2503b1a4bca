// Goal: the engine's error codes are its README's errors table (a test fails when code and docs
// drift), and an EngineError is a CreditflowError that is never retryable.
import { describe, expect, it } from "vitest";
import { errorDocsDrift } from "../testing/error-docs.ts";
import { CreditflowError } from "./creditflow-error.ts";
import { ENGINE_ERROR_CODES, EngineError } from "./errors.ts";

describe("EngineError", () => {
  it("has its codes documented in the README, and only those", () => {
    expect(errorDocsDrift(ENGINE_ERROR_CODES, new URL("../README.md", import.meta.url))).toEqual(
      [],
    );
  });

  it("is a CreditflowError naming the first bad value, never retryable", () => {
    const issue = { source: "plans.json", path: "/tiers/1/priceMicros", message: "must be >= 0" };
    const error = new EngineError("config_invalid", "invalid plans", [issue]);
    expect(error).toBeInstanceOf(CreditflowError);
    expect([error.name, error.code, error.field, error.retryable]).toEqual([
      "EngineError",
      "config_invalid",
      "/tiers/1/priceMicros",
      false,
    ]);
  });
});
