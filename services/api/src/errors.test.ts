// Goal: every error code in code is documented in the README with its status, and the README
// documents no code that does not exist (code and docs cannot drift).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { API_ERROR_CODES } from "./errors.ts";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const documented = new Map(
  [...readme.matchAll(/^\| `([a-z_]+)` +\| (\d{3}) +\|/gm)].map((m) => [m[1]!, Number(m[2])]),
);

describe("error codes", () => {
  it("are documented in the README with their status, and only they are", () => {
    const inCode = new Map(
      Object.entries(API_ERROR_CODES).map(([c, v]) => [c, v.status as number]),
    );
    expect(documented).toEqual(inCode);
  });
});
