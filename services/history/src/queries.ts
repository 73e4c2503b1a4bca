// The analysts' documented queries (services/history/queries/*.sql), loaded by name and run
// with typed parameters, so the files analysts read are the ones the tests run.
import { readFileSync } from "node:fs";
import type { ClickHouseClient } from "@clickhouse/client";

export const ANALYST_QUERIES = [
  "top_members",
  "feature_mix",
  "forfeited_bonus_by_campaign",
  "cost_per_task",
  "members_near_window_caps",
] as const;
export type AnalystQuery = (typeof ANALYST_QUERIES)[number];

export function analystQuerySql(name: AnalystQuery): string {
  return readFileSync(new URL(`../queries/${name}.sql`, import.meta.url), "utf8");
}

export async function runAnalystQuery<T>(
  client: ClickHouseClient,
  name: AnalystQuery,
  params: Record<string, unknown>,
): Promise<T[]> {
  const sql = analystQuerySql(name)
    .split("\n")
    .filter((line) => !line.trimStart().startsWith("--"))
    .join("\n");
  const rs = await client.query({ query: sql, query_params: params, format: "JSONEachRow" });
  return rs.json<T>();
}
