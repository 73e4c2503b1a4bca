// @creditflow/history: ClickHouse as the full history (migrations, the sink from Kafka, the
// member's transactions for the balance page). The only public door of the package.
import type { RebuildError } from "./errors.ts";

export { REBUILD_ERROR_CODES, RebuildError } from "./errors.ts";
/** A code of REBUILD_ERROR_CODES. */
export type RebuildErrorCode = RebuildError["code"];
export { loadMigrations, migrate, splitStatements } from "./migrate.ts";
export { ANALYST_QUERIES, type AnalystQuery, analystQuerySql, runAnalystQuery } from "./queries.ts";
export {
  DEFAULT_REBUILD_LIMITS,
  type LedgerFact,
  type MemberReplay,
  type Mismatch,
  planMember,
  type RebuildLimits,
  type RebuildOptions,
  type RebuildSummary,
  type ReplayStep,
  readLedger,
  rebuildRedis,
  replayMember,
  type SystemAddresses,
  signUpFromLedger,
} from "./rebuild.ts";
export { chTime, deadLetterRow, grantRow, ledgerRow, usageRow } from "./rows.ts";
export {
  DEFAULT_SINK_LIMITS,
  type RunningSink,
  type SinkLimits,
  type SinkOptions,
  type SinkStats,
  startSink,
} from "./sink.ts";
export {
  type HistoryTransaction,
  type HistoryTransactions,
  lastTransactions,
} from "./transactions.ts";
