// Goal: the README and the code do not drift: every refusal reason, limit and exported function
// is documented in services/engine/README.md (the error codes: errors.test.ts).

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import * as engine from "./index.ts";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");

describe("README", () => {
  it.each(engine.REFUSAL_REASONS)("documents the refusal reason %s", (reason) => {
    expect(readme).toContain(`\`${reason}\``);
  });

  it("documents every exported function and every MAX_ limit", () => {
    const names = Object.entries(engine)
      .filter(
        ([name, value]) =>
          typeof value === "function" && name !== "EngineError" && name !== "checkLimits",
      )
      .map(([name]) => name)
      .concat(
        Object.keys(engine).filter((name) => name.startsWith("MAX_") && name !== "MAX_TIME_MS"),
      );
    expect(names.filter((name) => !readme.includes(`\`${name}\``))).toEqual([]);
  });
});
