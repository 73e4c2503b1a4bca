// Goal: the error base carries code, field, retryable (from the closed list) and cause, and the
// docs check used by every package's errors.test.ts finds each way a README can drift.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { errorDocsDrift } from "../testing/error-docs.ts";
import { CreditflowError, errorCodes } from "./creditflow-error.ts";

const CODES = errorCodes({
  store_failed: { retryable: true, doc: "the store did not answer" },
  invalid_options: { retryable: false, doc: "an option is out of range" },
});

class SampleError extends CreditflowError<keyof typeof CODES> {
  constructor(
    code: keyof typeof CODES,
    message: string,
    opts: { field?: string; cause?: unknown },
  ) {
    super(CODES, code, message, opts);
  }
}

describe("CreditflowError", () => {
  it("takes retryable from the code's entry and keeps the field and the cause", () => {
    const cause = new Error("ECONNRESET");
    const error = new SampleError("store_failed", "load", { cause });
    expect(error).toBeInstanceOf(Error);
    expect([error.name, error.code, error.retryable, error.field, error.cause]).toEqual([
      "SampleError",
      "store_failed",
      true,
      undefined,
      cause,
    ]);
    const bad = new SampleError("invalid_options", "limits.max: > 0", { field: "limits.max" });
    expect([bad.retryable, bad.field, "cause" in bad]).toEqual([false, "limits.max", false]);
  });
});

describe("errorDocsDrift", () => {
  const dir = mkdtempSync(join(tmpdir(), "error-docs-"));
  const readme = (table: string): URL => {
    const path = join(dir, "README.md");
    writeFileSync(path, `# sample\n\n## Errors\n\n${table}\n\n## Tests\n`);
    return pathToFileURL(path);
  };
  const header = "| code | retryable | meaning |\n|---|---|---|\n";

  it("is empty when every code is documented with its flag, and only they", () => {
    const table = `${header}| \`store_failed\` | yes | no answer |\n| \`invalid_options\` | no | bad |`;
    expect(errorDocsDrift(CODES, readme(table))).toEqual([]);
  });

  it("names a code left out, a code the code lacks, a wrong flag and a missing table", () => {
    const table = `${header}| \`store_failed\` | no | no answer |\n| \`gone\` | no | removed |`;
    const drift = errorDocsDrift(CODES, readme(table));
    expect(drift).toHaveLength(3);
    expect(drift.join("\n")).toMatch(/`store_failed` retryable is yes, documented no/);
    expect(drift.join("\n")).toMatch(/`gone` is documented but is not in the code/);
    expect(drift.join("\n")).toMatch(/`invalid_options` is in the code but not documented/);
    expect(errorDocsDrift(CODES, readme("no table here"))).toHaveLength(1);
  });

  it("checks every other value of an entry in its column (an HTTP status)", () => {
    const http = errorCodes({ busy: { status: 503, retryable: true, doc: "busy" } });
    const table =
      "| code | status | retryable | meaning |\n|-|-|-|-|\n| `busy` | 500 | yes | busy |";
    expect(errorDocsDrift(http, readme(table))).toEqual([
      expect.stringMatching(/`busy` status is 503, documented 500/),
    ]);
  });
});
