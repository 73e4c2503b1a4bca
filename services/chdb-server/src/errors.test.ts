// Goal: engine errors keep ClickHouse's own code and text; statuses follow the server's table;
// the front's own error codes are its README's errors table (a test fails when they drift).
import { itDocumentsEachCode, itKeepsEachCode } from "@creditflow/engine/testing/error-docs";
import { describe, expect, it } from "vitest";
import {
  CHDB_SERVER_ERROR_CODES,
  ChdbServerError,
  engineFailure,
  frontFailure,
  httpStatusFor,
} from "./errors.ts";
import { resolveOptions } from "./options.ts";

describe("ChdbServerError", () => {
  itDocumentsEachCode(CHDB_SERVER_ERROR_CODES, new URL("../README.md", import.meta.url));
  itKeepsEachCode(ChdbServerError, CHDB_SERVER_ERROR_CODES);

  it("is what a bad option raises, naming it", () => {
    expect(() => resolveOptions({ dataDir: "/d", poolSize: 0 })).toThrow(
      expect.objectContaining({
        name: "ChdbServerError",
        code: "invalid_option",
        field: "poolSize",
        retryable: false,
      }),
    );
  });
});

describe("engineFailure", () => {
  it("keeps the code from chdb's field and appends the version like the server", () => {
    const error = Object.assign(
      new Error("Code: 60. DB::Exception: Unknown table x. (UNKNOWN_TABLE)"),
      { clickhouseCode: 60 },
    );
    expect(engineFailure(error, "26.7.2.1")).toEqual({
      code: 60,
      message: "Code: 60. DB::Exception: Unknown table x. (UNKNOWN_TABLE) (version 26.7.2.1)",
    });
  });
  it("reads the code from the text when the field is missing", () => {
    expect(
      engineFailure(
        new Error("Code: 395. DB::Exception: boom. (FUNCTION_THROW_IF_VALUE_IS_NON_ZERO)"),
        "v",
      ).code,
    ).toBe(395);
  });
  it("words the front's own failures like the server", () => {
    expect(frontFailure(373, "Session s is locked by a concurrent client", "v").message).toBe(
      "Code: 373. DB::Exception: Session s is locked by a concurrent client. (SESSION_IS_LOCKED) (version v)",
    );
  });
});

describe("httpStatusFor", () => {
  it("maps syntax errors to 400, unknown tables to 404, the rest to 500", () => {
    expect([httpStatusFor(62), httpStatusFor(60), httpStatusFor(395)]).toEqual([400, 404, 500]);
  });
});
