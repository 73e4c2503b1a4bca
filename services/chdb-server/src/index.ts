// Public door of @creditflow/chdb-server: start ClickHouse's HTTP interface in front of the
// chdb engine on a persistent data directory, and stop it without leaving native work behind.
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { type Logger, pino } from "pino";
import { drainEngine, EngineKiller, EngineSession } from "./engine.ts";
import { ChdbServerError } from "./errors.ts";
import { createHandler } from "./http.ts";
import { createMetrics } from "./metrics.ts";
import { type ChdbServerOptions, resolveOptions } from "./options.ts";
import { NamedSessions, SessionPool } from "./sessions.ts";

export {
  CHDB_SERVER_ERROR_CODES,
  ChdbServerError,
} from "./errors.ts";
/** A code of CHDB_SERVER_ERROR_CODES. */
export type ChdbServerErrorCode = ChdbServerError["code"];
export type { ChdbServerOptions } from "./options.ts";
export { defaultOptions, resolveOptions } from "./options.ts";

export interface ChdbServer {
  /** http://host:port of the HTTP interface */
  url: string;
  port: number;
  /** ClickHouse version of the engine */
  version: string;
  /** Stops accepting, lets in-flight requests finish (up to shutdownGraceMs), closes the engine. */
  close(): Promise<void>;
}

export async function startChdbServer(
  input: Partial<ChdbServerOptions> & { dataDir: string; logger?: Logger },
): Promise<ChdbServer> {
  const { logger, ...rest } = input;
  const options = resolveOptions(rest);
  const log = logger ?? pino({ level: "info" });
  mkdirSync(options.dataDir, { recursive: true });
  // Spool files of a previous run that died mid-insert are of no use to anyone.
  mkdirSync(options.spoolDir, { recursive: true });
  for (const name of readdirSync(options.spoolDir)) {
    if (/^insert-[0-9a-f-]+\.data$/.test(name))
      rmSync(join(options.spoolDir, name), { force: true });
  }

  let probe: EngineSession;
  try {
    probe = new EngineSession(options.dataDir);
  } catch (error) {
    throw new ChdbServerError(
      "engine_unavailable",
      `cannot open the data directory ${options.dataDir}`,
      { cause: error },
    );
  }
  const facts = await probe.queryAll("SELECT version(), timezone()", "TabSeparated");
  probe.close();
  const [version = "unknown", timezone = "UTC"] = Buffer.from(facts.bytes)
    .toString("utf8")
    .trim()
    .split("\t");

  const pool = new SessionPool(
    options.dataDir,
    options.poolSize,
    options.maxQueuedRequests,
    options.queueTimeoutMs,
  );
  const sessions = new NamedSessions(
    options.dataDir,
    options.maxSessions,
    options.defaultSessionTimeoutSeconds,
    options.maxSessionTimeoutSeconds,
  );
  const killer = new EngineKiller(options.dataDir);
  const metrics = createMetrics(pool, sessions);
  const server: Server = createServer(
    {
      maxHeaderSize: options.maxHeaderBytes,
      requestTimeout: options.requestTimeoutMs,
      keepAliveTimeout: options.keepAliveTimeoutSeconds * 1000,
    },
    createHandler({ options, pool, sessions, killer, metrics, log, version, timezone }),
  );
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${options.host}:${port}`;
  log.info(
    { url, dataDir: options.dataDir, poolSize: options.poolSize, version },
    "chdb-server listening",
  );

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    version,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const grace = new Promise<void>((resolve) =>
          setTimeout(resolve, options.shutdownGraceMs).unref(),
        );
        await Promise.race([closed, grace]);
        server.closeAllConnections();
        // Sessions are closed only once no request holds one; chdb defers the rest until native calls end.
        const deadline = Date.now() + options.shutdownGraceMs;
        while (pool.busy > 0 && Date.now() < deadline)
          await new Promise((resolve) => setTimeout(resolve, 20));
        pool.close();
        sessions.close();
        killer.close();
        await drainEngine();
        log.info("chdb-server stopped");
      })();
      return closing;
    },
  };
}
