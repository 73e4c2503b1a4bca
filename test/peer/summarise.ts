// Summary of a vitest JSON report for the peer check: passed, failed and skipped counts, then
// each failure grouped under its reason (the first line of its error), test names beside it.
// Prints; exits 1 when any test failed.
import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { stripVTControlCharacters } from "node:util";

interface AssertionResult {
  fullName: string;
  status: "passed" | "failed" | "pending" | "skipped" | "todo" | "disabled";
  failureMessages: string[] | null;
}
interface FileResult {
  name: string;
  status: string;
  message: string;
  assertionResults: AssertionResult[];
}
interface Report {
  testResults: FileResult[];
}

const path = process.argv[2];
if (!path) throw new Error("usage: summarise.ts <vitest JSON report>");
const report = JSON.parse(readFileSync(path, "utf8")) as Report;

/** The first meaningful line of an error, without ANSI colours, cut to a readable length. */
function reasonOf(message: string): string {
  const plain = stripVTControlCharacters(message);
  const line = plain.split("\n").find((l) => l.trim().length > 0) ?? "(no message)";
  return line.trim().slice(0, 220);
}

let passed = 0;
let failed = 0;
let skipped = 0;
const byReason = new Map<string, string[]>();
const skippedByFile = new Map<string, number>();
const note = (reason: string, test: string) => {
  const list = byReason.get(reason) ?? [];
  list.push(test);
  byReason.set(reason, list);
};
const root = report.testResults[0]?.name.split("/packages/")[0] ?? "";
for (const file of report.testResults) {
  const name = relative(root, file.name);
  if (file.assertionResults.length === 0 && file.status === "failed") {
    failed++;
    note(reasonOf(file.message), `${name} (the whole file)`);
  }
  for (const test of file.assertionResults) {
    if (test.status === "passed") passed++;
    else if (test.status === "failed") {
      failed++;
      note(reasonOf(test.failureMessages?.join("\n") ?? ""), `${name} > ${test.fullName}`);
    } else {
      skipped++;
      skippedByFile.set(name, (skippedByFile.get(name) ?? 0) + 1);
    }
  }
}

console.log(
  `tests: ${passed + failed + skipped}, passed: ${passed}, failed: ${failed}, skipped: ${skipped}`,
);
const groups = [...byReason].sort((a, b) => b[1].length - a[1].length);
for (const [reason, tests] of groups) {
  console.log(`\n[${tests.length}] ${reason}`);
  for (const test of tests) console.log(`    ${test}`);
}
if (skippedByFile.size > 0) {
  console.log("\nskipped, by file:");
  for (const [file, count] of [...skippedByFile].sort((a, b) => b[1] - a[1]))
    console.log(`    ${count}  ${file}`);
}
process.exitCode = failed > 0 ? 1 : 0;
