// Goal: limits are checked at start-up and a bad one is refused with its field named.
import { describe, expect, it } from "vitest";
import { ChdbServerError } from "./errors.ts";
import { resolveOptions } from "./options.ts";

describe("resolveOptions", () => {
  it("fills the defaults and derives the spool folder from the data folder", () => {
    const options = resolveOptions({ dataDir: "/state/data/clickhouse" });
    expect(options).toMatchObject({
      port: 18123,
      poolSize: 4,
      spoolDir: "/state/data/clickhouse-spool",
    });
  });
  it("refuses an out-of-range limit naming the field", () => {
    const attempt = () => resolveOptions({ dataDir: "/d", poolSize: 0 });
    expect(attempt).toThrow(ChdbServerError);
    expect(attempt).toThrow(/^poolSize: /);
  });
  it("refuses a non-integer from the environment", () => {
    expect(() => resolveOptions({ dataDir: "/d", maxBodyBytes: Number.NaN })).toThrow(
      /^maxBodyBytes: /,
    );
  });
  it("refuses unknown options", () => {
    expect(() => resolveOptions({ dataDir: "/d", poolsize: 2 } as never)).toThrow(ChdbServerError);
  });
});
