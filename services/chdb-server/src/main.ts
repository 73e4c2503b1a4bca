// Runnable entry of the local stack's ClickHouse: reads the port, data directory, limits and
// log level from the environment, serves until SIGTERM/SIGINT, then shuts down cleanly.
import { join } from "node:path";
import { intFromEnv, stopOnSignals } from "@creditflow/http-service";
import { pino } from "pino";
import { type ChdbServerOptions, startChdbServer } from "./index.ts";

const log = pino({ level: process.env.CF_CLICKHOUSE_LOG_LEVEL ?? "info" });

const state = process.env.CF_STATE ?? join(process.cwd(), ".state");
const options: Partial<ChdbServerOptions> & { dataDir: string } = {
  dataDir: process.env.CF_CLICKHOUSE_DATA_DIR ?? join(state, "data", "clickhouse"),
  host: process.env.CF_CLICKHOUSE_HOST ?? "127.0.0.1",
  port: intFromEnv("CF_CLICKHOUSE_PORT"),
  poolSize: intFromEnv("CF_CLICKHOUSE_POOL_SIZE"),
  maxQueuedRequests: intFromEnv("CF_CLICKHOUSE_MAX_QUEUED_REQUESTS"),
  queueTimeoutMs: intFromEnv("CF_CLICKHOUSE_QUEUE_TIMEOUT_MS"),
  abandonedQueryHoldMs: intFromEnv("CF_CLICKHOUSE_ABANDONED_QUERY_HOLD_MS"),
  maxBodyBytes: intFromEnv("CF_CLICKHOUSE_MAX_BODY_BYTES"),
  maxSessions: intFromEnv("CF_CLICKHOUSE_MAX_SESSIONS"),
  requestTimeoutMs: intFromEnv("CF_CLICKHOUSE_REQUEST_TIMEOUT_MS"),
};

try {
  const server = await startChdbServer({ ...options, logger: log });
  stopOnSignals(log, () => server.close());
} catch (error) {
  log.fatal({ err: error }, "chdb-server did not start");
  process.exit(1);
}
