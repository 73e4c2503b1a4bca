// Goal: every error code of the API is documented in the README with its status and whether a
// retry may help, and the README documents no code that does not exist (code and docs cannot
// drift); both error classes are CreditflowErrors naming the field.
import { CreditflowError } from "@creditflow/engine";
import { errorDocsDrift } from "@creditflow/engine/testing/error-docs";
import { describe, expect, it } from "vitest";
import { API_ERROR_CODES, API_OPTION_ERROR_CODES, ApiError, ApiOptionError } from "./errors.ts";

const readme = new URL("../README.md", import.meta.url);

describe("error codes", () => {
  it("are documented in the README with their status and retryable, and only they are", () => {
    expect(errorDocsDrift({ ...API_ERROR_CODES, ...API_OPTION_ERROR_CODES }, readme)).toEqual([]);
  });

  it("are CreditflowErrors: a refusal with its status and body, a start-up failure naming its field", () => {
    const refusal = new ApiError("redis_unavailable", "", "the balance store did not answer");
    expect(refusal).toBeInstanceOf(CreditflowError);
    expect([refusal.statusCode, refusal.retryable, refusal.body()]).toEqual([
      503,
      true,
      {
        error: {
          code: "redis_unavailable",
          field: "",
          message: "the balance store did not answer",
        },
      },
    ]);
    const option = new ApiOptionError("adminTokens.0.secret", "secrets must be distinct");
    expect(option).toBeInstanceOf(CreditflowError);
    expect([option.name, option.code, option.field, option.retryable]).toEqual([
      "ApiOptionError",
      "invalid_options",
      "adminTokens.0.secret",
      false,
    ]);
  });
});
