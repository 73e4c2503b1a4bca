// Goal: the README documents every error code of the producer library with whether a retry may
// help, and no code the library does not have: a test fails when code and docs drift.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { PRODUCER_ERROR_CODES } from "./errors.ts";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");

describe("PRODUCER_ERROR_CODES", () => {
  it("are the README's table of codes, each with its retryable", () => {
    const documented = [...readme.matchAll(/^\| `([a-z_]+)` \| (yes|no) \|/gm)].map((m) => [
      m[1],
      m[2] === "yes",
    ]);
    const inCode = Object.entries(PRODUCER_ERROR_CODES).map(([code, c]) => [code, c.retryable]);
    expect(documented).toEqual(inCode);
  });
});
