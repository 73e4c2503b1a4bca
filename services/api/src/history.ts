// A member's last transactions: ClickHouse history first; the consumer's copy in Redis answers
// instead when ClickHouse fails, is slow, or lags behind the live state (docs/product-rules.md: history may
// lag, the live balance may not). The answer says which source it came from.
import type { ClickHouseClient } from "@clickhouse/client";
import { type MemberState, recentTransactions } from "@creditflow/engine";
import { type HistoryTransaction, lastTransactions } from "@creditflow/history";

export interface TransactionRow {
  taskId: string;
  feature: string;
  atMs: number;
  creditsMicros: number;
}

export interface TransactionsAnswer {
  source: "history" | "live";
  transactions: TransactionRow[];
  historyNewestAtMs: number | null;
  historyBehind: boolean;
  historyError: string | null;
}

/** Newest first, at most this many: the product rules' "last 10 transactions". */
export const TRANSACTIONS_SHOWN = 10;

/**
 * History lags when a task the live state holds is missing from it, or has another cost, among
 * the tasks history would show (when it shows a full page, older ones are out of its window).
 */
export function historyIsBehind(live: TransactionRow[], history: HistoryTransaction[]): boolean {
  const byTask = new Map(history.map((t) => [t.taskId, t.creditsMicros]));
  const oldestShown =
    history.length >= TRANSACTIONS_SHOWN
      ? Math.min(...history.map((t) => t.atMs))
      : Number.NEGATIVE_INFINITY;
  return live.some((t) => t.atMs >= oldestShown && byTask.get(t.taskId) !== t.creditsMicros);
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export async function memberTransactions(
  clickhouse: ClickHouseClient,
  userId: string,
  state: MemberState | null,
  timeoutMs: number,
): Promise<TransactionsAnswer> {
  const live: TransactionRow[] =
    state === null
      ? []
      : recentTransactions(state, TRANSACTIONS_SHOWN).map((t) => ({
          taskId: t.taskId,
          feature: t.feature,
          atMs: t.atMs,
          creditsMicros: t.creditsMicros,
        }));
  try {
    const history = await withTimeout(
      lastTransactions(clickhouse, userId, TRANSACTIONS_SHOWN),
      timeoutMs,
    );
    const behind = historyIsBehind(live, history.transactions);
    return {
      source: behind ? "live" : "history",
      transactions: behind ? live : history.transactions,
      historyNewestAtMs: history.newestProcessedAtMs,
      historyBehind: behind,
      historyError: null,
    };
  } catch (error) {
    return {
      source: "live",
      transactions: live,
      historyNewestAtMs: null,
      historyBehind: true,
      historyError: (error as Error).message.slice(0, 200),
    };
  }
}
