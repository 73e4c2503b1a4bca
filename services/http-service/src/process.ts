// The process around a creditflow HTTP service (the API, the ingest, the ClickHouse front):
// integer settings read from the environment, and one clean stop on SIGTERM or SIGINT.
import type { Logger } from "pino";

/**
 * An integer setting from the environment: undefined when unset or empty (the default applies),
 * NaN when malformed, so the service's option validation refuses it naming its field.
 */
export function intFromEnv(name: string, env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  const value = Number(raw);
  return Number.isInteger(value) ? value : Number.NaN;
}

/** The part of `process` a stop needs (tests pass their own). */
export interface SignalledProcess {
  on(signal: "SIGTERM" | "SIGINT", listener: () => void): unknown;
  exit(code: number): unknown;
}

/**
 * On the first SIGTERM or SIGINT: log it, `close()` (stop taking requests, drain, disconnect),
 * then exit 0, or 1 with the error logged when the close failed. Signals during the close are
 * ignored: the close in hand decides the exit.
 */
export function stopOnSignals(
  log: Logger,
  close: () => Promise<void>,
  host: SignalledProcess = process,
): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping");
    close().then(
      () => host.exit(0),
      (error: unknown) => {
        log.error({ err: error }, "unclean stop");
        host.exit(1);
      },
    );
  };
  host.on("SIGTERM", () => stop("SIGTERM"));
  host.on("SIGINT", () => stop("SIGINT"));
}
