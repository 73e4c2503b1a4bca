// Goal: every error code of the API is documented in the README with its status and whether a
// retry may help, and the README documents no code that does not exist (code and docs cannot
// drift); both error classes are CreditflowErrors naming the field.
import { CreditflowError } from "@creditflow/engine";
import { itDocumentsEachCode, itNamesTheOption } from "@creditflow/engine/testing/error-docs";
import { describe, expect, it } from "vitest";
import { API_ERROR_CODES, API_OPTION_ERROR_CODES, ApiError, ApiOptionError } from "./errors.ts";

const readme = new URL("../README.md", import.meta.url);

describe("error codes", () => {
  itDocumentsEachCode({ ...API_ERROR_CODES, ...API_OPTION_ERROR_CODES }, readme);
});

describe("ApiError", () => {
  it("is a CreditflowError: a refusal with its status and body", () => {
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
  });
});

describe("ApiOptionError", () => {
  itNamesTheOption(ApiOptionError);
});
