// Goal: the README documents every error code of the ingest with its status, and no code the
// ingest does not have: a test fails when code and docs drift.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { INGEST_ERROR_CODES } from "./errors.ts";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");

describe("INGEST_ERROR_CODES", () => {
  it("are the README's table of codes, each with its status", () => {
    const documented = [...readme.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map((m) => [
      m[1],
      Number(m[2]),
    ]);
    const inCode = Object.entries(INGEST_ERROR_CODES).map(([code, c]) => [code, c.status]);
    expect(documented).toEqual(inCode);
  });
});
