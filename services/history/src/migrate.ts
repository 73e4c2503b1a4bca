// The migration runner: applies services/history/migrations/NNNN_name.sql in order, each once,
// recording what it applied in `schema_migrations`. Statements are split on a `;` that ends a
// line, since ClickHouse's HTTP interface takes one statement per request.
import { readdirSync, readFileSync } from "node:fs";
import { ClickHouseLogLevel, createClient } from "@clickhouse/client";

const migrationsDir = new URL("../migrations/", import.meta.url);

export interface Migration {
  version: number;
  name: string;
  statements: string[];
}

/** splitStatements(sql): the statements of a file, comments and blank lines kept out. */
export function splitStatements(sql: string): string[] {
  const withoutComments = sql
    .split("\n")
    .filter((line) => !line.trimStart().startsWith("--"))
    .join("\n");
  return withoutComments
    .split(/;\s*$/m)
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

export function loadMigrations(): Migration[] {
  return readdirSync(migrationsDir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((file) => ({
      version: Number(file.slice(0, 4)),
      name: file.replace(/\.sql$/, ""),
      statements: splitStatements(readFileSync(new URL(file, migrationsDir), "utf8")),
    }));
}

/**
 * migrate(url, database): create the database if needed and apply the migrations it has not
 * recorded, with unqualified table names resolved in that database; returns the names applied
 * now. Idempotent; safe to run at every start of the sink.
 */
export async function migrate(url: string, database: string): Promise<string[]> {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(database)) {
    throw new Error(`database name "${database}" is not an identifier`);
  }
  const bootstrap = createClient({ url, log: { level: ClickHouseLogLevel.OFF } });
  try {
    await bootstrap.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
  } finally {
    await bootstrap.close();
  }
  const client = createClient({ url, database, log: { level: ClickHouseLogLevel.OFF } });
  try {
    await client.command({
      query: `CREATE TABLE IF NOT EXISTS schema_migrations
        (version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
        ENGINE = ReplacingMergeTree ORDER BY version`,
    });
    const done = await client.query({
      query: "SELECT version FROM schema_migrations FINAL",
      format: "JSONEachRow",
    });
    const applied = new Set((await done.json<{ version: number }>()).map((r) => Number(r.version)));
    const now: string[] = [];
    for (const m of loadMigrations()) {
      if (applied.has(m.version)) continue;
      for (const statement of m.statements) await client.command({ query: statement });
      await client.insert({
        table: "schema_migrations",
        values: [{ version: m.version, name: m.name }],
        format: "JSONEachRow",
      });
      now.push(m.name);
    }
    return now;
  } finally {
    await client.close();
  }
}
