// What the balance page asks history: a member's last transactions (one per task: the sum of
// its usage debits and overdraft shortfall), and how fresh history is.
import type { ClickHouseClient } from "@clickhouse/client";

export interface HistoryTransaction {
  taskId: string;
  feature: string;
  /** Time of the task's last usage, epoch ms. */
  atMs: number;
  /** Credits the task consumed, in micro-credits, overdraft included. */
  creditsMicros: number;
}

export interface HistoryTransactions {
  transactions: HistoryTransaction[];
  /** The newest processing time of any of this member's entries in history; null if none. */
  newestProcessedAtMs: number | null;
}

const chMs = (s: string): number => Date.parse(`${s.replace(" ", "T")}Z`);

export async function lastTransactions(
  client: ClickHouseClient,
  userId: string,
  limit = 10,
): Promise<HistoryTransactions> {
  const rs = await client.query({
    query: `
      SELECT
        task_id AS taskId,
        any(feature) AS feature,
        toString(max(event_at)) AS at,
        toString(-sumIf(amount_micros, kind = 'debit') + sumIf(detail_micros, kind = 'overdraft')) AS credits,
        toString(max(processed_at)) AS processed
      FROM ledger_entries FINAL
      WHERE user_id = {userId:String} AND kind IN ('debit', 'overdraft') AND task_id IS NOT NULL
      GROUP BY task_id
      ORDER BY max(event_at) DESC, task_id
      LIMIT {limit:UInt32}`,
    query_params: { userId, limit },
    format: "JSONEachRow",
  });
  const rows = await rs.json<{
    taskId: string;
    feature: string;
    at: string;
    credits: string;
    processed: string;
  }>();
  const transactions = rows.map((r) => ({
    taskId: r.taskId,
    feature: r.feature,
    atMs: chMs(r.at),
    creditsMicros: Number(r.credits),
  }));
  const newest = rows.length === 0 ? null : Math.max(...rows.map((r) => chMs(r.processed)));
  return { transactions, newestProcessedAtMs: newest };
}
