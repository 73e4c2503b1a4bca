// Runnable entry of the local stack's ClickHouse: reads the port, data directory, limits and
// log level from the environment, serves until SIGTERM/SIGINT, then shuts down cleanly.
import { join } from "node:path";
import { pino } from "pino";
import { type ChdbServerOptions, startChdbServer } from "./index.ts";

const log = pino({ level: process.env.CF_CLICKHOUSE_LOG_LEVEL ?? "info" });

/** An integer option from the environment, left to the defaults when unset. */
function intFromEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return undefined;
  const value = Number(raw);
  return Number.isInteger(value) ? value : Number.NaN; // NaN fails validation, naming the field
}

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
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping");
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, "unclean stop");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
} catch (error) {
  log.fatal({ err: error }, "chdb-server did not start");
  process.exit(1);
}
