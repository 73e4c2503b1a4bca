// Goal: every error code of the consumer is documented in its README with whether a retry may
// help, and only those (a test fails when code and docs drift); a ConsumerError is a
// CreditflowError keeping its code's retryable, its field and its cause.
import { itDocumentsEachCode, itKeepsEachCode } from "@creditflow/engine/testing/error-docs";
import { describe } from "vitest";
import { CONSUMER_ERROR_CODES, ConsumerError } from "./errors.ts";

describe("ConsumerError", () => {
  itDocumentsEachCode(CONSUMER_ERROR_CODES, new URL("../README.md", import.meta.url));
  itKeepsEachCode(ConsumerError, CONSUMER_ERROR_CODES);
});
