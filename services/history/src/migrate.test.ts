// Goal: migration files split into the single statements ClickHouse's HTTP interface takes, in
// version order, with comments left out.
import { describe, expect, it } from "vitest";
import { loadMigrations, splitStatements } from "./migrate.ts";

describe("migrations", () => {
  it("splits on a semicolon that ends a line, not inside a statement", () => {
    const sql =
      "-- a comment; with a semicolon\nCREATE TABLE a (x String DEFAULT ';');\n\nSELECT 1;\n";
    expect(splitStatements(sql)).toEqual(["CREATE TABLE a (x String DEFAULT ';')", "SELECT 1"]);
  });

  it("loads the shipped migrations in version order, each with statements", () => {
    const all = loadMigrations();
    expect(all.map((m) => m.version)).toEqual([...all.map((m) => m.version)].sort((a, b) => a - b));
    expect(all[0]?.name).toBe("0001_raw_tables");
    for (const m of all) expect(m.statements.length).toBeGreaterThan(0);
    const first = all[0]!.statements.join("\n");
    for (const table of ["ledger_entries", "usage_events", "grant_commands", "dead_letters"]) {
      expect(first).toContain(`CREATE TABLE IF NOT EXISTS ${table}`);
    }
  });
});
