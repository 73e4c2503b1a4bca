// Goal: the README documents every error code of the ingest with its status and whether a retry
// may help, and no code the ingest does not have (a test fails when code and docs drift); a
// start-up failure is a CreditflowError naming the option.
import { itDocumentsEachCode, itNamesTheOption } from "@creditflow/engine/testing/error-docs";
import { describe } from "vitest";
import { INGEST_ERROR_CODES, INGEST_OPTION_ERROR_CODES, IngestOptionError } from "./errors.ts";

describe("INGEST_ERROR_CODES", () => {
  const readme = new URL("../README.md", import.meta.url);
  itDocumentsEachCode({ ...INGEST_ERROR_CODES, ...INGEST_OPTION_ERROR_CODES }, readme);
});

describe("IngestOptionError", () => {
  itNamesTheOption(IngestOptionError);
});
