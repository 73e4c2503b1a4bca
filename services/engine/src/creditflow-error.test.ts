// Goal: the error base carries code, field, retryable (from the closed list) and cause, and so
// does a class made by withCodes; the docs check used by every package's errors.test.ts finds each
// way a README can drift; and every error class under services/*/src extends the base, each
// package's lists checked by its errors.test.ts.
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { errorDocsDrift, itKeepsEachCode } from "../testing/error-docs.ts";
import { CreditflowError, errorCodes } from "./creditflow-error.ts";

const CODES = errorCodes({
  store_failed: { retryable: true, doc: "the store did not answer" },
  invalid_options: { retryable: false, doc: "an option is out of range" },
});

class SampleError extends CreditflowError.withCodes(CODES) {}

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

  describe("withCodes", () => {
    itKeepsEachCode(SampleError, CODES);
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

describe("every package", () => {
  const services = new URL("../../", import.meta.url);
  const sources = (dir: URL): URL[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
      const url = new URL(entry.name + (entry.isDirectory() ? "/" : ""), dir);
      if (entry.isDirectory()) return sources(url);
      return entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") ? [url] : [];
    });
  const packages = readdirSync(services).filter((name) =>
    existsSync(new URL(`${name}/src/`, services)),
  );

  it("has its error classes extend CreditflowError (or OptionError, one of them)", () => {
    const strays = packages.flatMap((name) =>
      sources(new URL(`${name}/src/`, services)).flatMap((file) =>
        [...readFileSync(file, "utf8").matchAll(/class\s+(\w+)\s+extends\s+(\w*Error)\b/g)]
          .filter((m) => m[2] !== "CreditflowError" && m[2] !== "OptionError")
          .map((m) => `${name}: ${m[1]} extends ${m[2]}`),
      ),
    );
    expect(strays).toEqual([]);
  });

  it("checks each code list of its errors.ts against its README in errors.test.ts", () => {
    const unchecked = packages.flatMap((name) => {
      const errors = new URL(`${name}/src/errors.ts`, services);
      if (!existsSync(errors)) return [];
      const lists = [
        ...readFileSync(errors, "utf8").matchAll(/export const (\w+) = errorCodes\(/g),
      ];
      const test = new URL(`${name}/src/errors.test.ts`, services);
      const text = existsSync(test) ? readFileSync(test, "utf8") : "";
      return lists
        .filter(
          (m) => !/\b(errorDocsDrift|itDocumentsEachCode)\(/.test(text) || !text.includes(m[1]!),
        )
        .map((m) => `${name}: ${m[1]}`);
    });
    expect(unchecked).toEqual([]);
  });
});
