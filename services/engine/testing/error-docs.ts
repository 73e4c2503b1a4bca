// Test support for every package's errors.test.ts: a package's closed list of error codes against
// its README's errors table, so a test fails when code and docs drift, and the checks of an error
// class made by CreditflowError.withCodes or extending OptionError. Not part of the engine's door.
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import {
  CreditflowError,
  type ErrorCodeList,
  type ErrorCodeSpec,
  type OptionError,
} from "../src/creditflow-error.ts";

interface Row {
  line: number;
  cells: Map<string, string>;
}

const codeCell = /^`([a-z0-9_]+)`$/;

/** The rows of every table whose header starts `| code |` and has a `retryable` column. */
function errorRows(readme: string): Row[] {
  const rows: Row[] = [];
  const lines = readme.split("\n");
  let header: string[] | null = null;
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim();
    if (!line.startsWith("|")) {
      header = null;
      continue;
    }
    const cells = line
      .replace(/^\|/, "")
      .replace(/\|$/, "")
      .split("|")
      .map((cell) => cell.trim());
    const previous = lines[index - 1]?.trim() ?? "";
    if (!previous.startsWith("|")) {
      const names = cells.map((cell) => cell.toLowerCase());
      header = names[0] === "code" && names.includes("retryable") ? names : null;
      continue;
    }
    if (header === null || cells.every((cell) => /^:?-+:?$/.test(cell))) continue;
    rows.push({ line: index + 1, cells: new Map(header.map((name, i) => [name, cells[i] ?? ""])) });
  }
  return rows;
}

function shown(value: unknown): string {
  return typeof value === "boolean" ? (value ? "yes" : "no") : String(value);
}

/**
 * Where the README at `readme` and the code list disagree, one line each; `[]` when they agree.
 * Every code must be a row of an errors table (`| code | retryable | meaning |`, other columns
 * allowed) with each of its values but `doc` in the column of that name (`retryable` as yes/no,
 * `status` as the number) and a meaning; no row may name a code the list lacks.
 */
export function errorDocsDrift(codes: ErrorCodeList, readme: URL): string[] {
  const text = readFileSync(readme, "utf8");
  const where = readme.pathname.split("/").slice(-3).join("/");
  const rows = errorRows(text);
  if (rows.length === 0) return [`${where}: no table | code | retryable | meaning |`];
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const row of rows) {
    const cell = row.cells.get("code") ?? "";
    const code = codeCell.exec(cell)?.[1];
    const at = `${where}:${row.line}`;
    if (code === undefined) {
      problems.push(`${at}: ${JSON.stringify(cell)} is not a \`code\``);
      continue;
    }
    if (seen.has(code)) problems.push(`${at}: \`${code}\` is listed twice`);
    seen.add(code);
    const spec = codes[code];
    if (spec === undefined) {
      problems.push(`${at}: \`${code}\` is documented but is not in the code`);
      continue;
    }
    for (const [name, value] of Object.entries(spec)) {
      if (name === "doc") continue;
      const documented = row.cells.get(name.toLowerCase());
      if (documented === undefined) problems.push(`${at}: \`${code}\` has no ${name} column`);
      else if (documented !== shown(value))
        problems.push(`${at}: \`${code}\` ${name} is ${shown(value)}, documented ${documented}`);
    }
    if (row.cells.has("meaning") && row.cells.get("meaning") === "")
      problems.push(`${at}: \`${code}\` has no meaning`);
  }
  for (const code of Object.keys(codes)) {
    if (!seen.has(code)) problems.push(`${where}: \`${code}\` is in the code but not documented`);
  }
  return problems;
}

/** The test that a package's codes are its README's errors table, and only they (errorDocsDrift). */
export function itDocumentsEachCode(codes: ErrorCodeList, readme: URL): void {
  it("has its codes documented in its README, and only those", () => {
    expect(errorDocsDrift(codes, readme)).toEqual([]);
  });
}

type WithCodesClass<Code extends string> = new (
  code: Code,
  message: string,
  opts?: { field?: string; cause?: unknown },
) => CreditflowError<Code>;

/**
 * The test of an error class made by CreditflowError.withCodes: built with each code of its list,
 * it is a CreditflowError named after its class, keeping the code, the message, the field and the
 * cause and saying the code's retryable; built without options, it has no field and no cause.
 */
export function itKeepsEachCode<Code extends string>(
  ErrorClass: WithCodesClass<Code>,
  codes: Readonly<Record<Code, ErrorCodeSpec>>,
): void {
  it("is a CreditflowError keeping each code with its retryable, the field and the cause", () => {
    const cause = new Error("ECONNRESET");
    for (const code of Object.keys(codes) as Code[]) {
      const error = new ErrorClass(code, `${code}: what happened`, { field: "limits.max", cause });
      expect(error).toBeInstanceOf(CreditflowError);
      expect(error).toBeInstanceOf(ErrorClass);
      const { name, message, field, retryable } = error;
      expect({ name, code: error.code, message, field, retryable, cause: error.cause }).toEqual({
        name: ErrorClass.name,
        code,
        message: `${code}: what happened`,
        field: "limits.max",
        retryable: codes[code].retryable,
        cause,
      });
      const bare = new ErrorClass(code, "bare");
      expect([bare.field, "cause" in bare]).toEqual([undefined, false]);
    }
  });
}

/** The test of a service's OptionError: a start-up failure naming the option, never retryable. */
export function itNamesTheOption(ErrorClass: new (field: string, message: string) => OptionError) {
  it("is a CreditflowError naming the option at fault, never retryable", () => {
    const error = new ErrorClass("limits.maxBatchEvents", "must be >= 1");
    expect(error).toBeInstanceOf(CreditflowError);
    const { name, code, field, retryable, message } = error;
    expect({ name, code, field, retryable, message }).toEqual({
      name: ErrorClass.name,
      code: "invalid_options",
      field: "limits.maxBatchEvents",
      retryable: false,
      message: "limits.maxBatchEvents: must be >= 1",
    });
  });
}
