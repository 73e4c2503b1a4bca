// Goal: data holding a blank line is read from a spool file by the client's own statement,
// with FROM INFILE placed where ClickHouse's grammar wants it.
import { describe, expect, it } from "vitest";
import { withInfile } from "./engine.ts";

describe("withInfile", () => {
  it("puts FROM INFILE right before the trailing FORMAT", () => {
    const spooled = withInfile("INSERT INTO db.t (a, b) FORMAT RowBinary", "/spool");
    expect(spooled?.path).toMatch(/^\/spool\/insert-[0-9a-f-]+\.data$/);
    expect(spooled?.statement).toBe(
      `INSERT INTO db.t (a, b) FROM INFILE '${spooled?.path}' FORMAT RowBinary`,
    );
  });
  it("leaves statements without a trailing FORMAT, or with SETTINGS, inline", () => {
    expect(withInfile("INSERT INTO t VALUES", "/spool")).toBeUndefined();
    expect(
      withInfile("INSERT INTO t SETTINGS async_insert = 0 FORMAT CSV", "/spool"),
    ).toBeUndefined();
  });
});
