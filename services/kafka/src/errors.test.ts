// Goal: the README documents every error code of the Kafka plumbing with whether a retry may
// help, and no code the package does not have (a test fails when code and docs drift); a
// KafkaError is a CreditflowError keeping its code's retryable and its cause.
import { itDocumentsEachCode, itKeepsEachCode } from "@creditflow/engine/testing/error-docs";
import { describe } from "vitest";
import { KAFKA_ERROR_CODES, KafkaError } from "./errors.ts";

describe("KafkaError", () => {
  itDocumentsEachCode(KAFKA_ERROR_CODES, new URL("../README.md", import.meta.url));
  itKeepsEachCode(KafkaError, KAFKA_ERROR_CODES);
});
