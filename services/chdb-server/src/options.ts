// The front's named limits and settings, validated once at start-up (TypeBox schema):
// a wrong value stops the server before it listens, with the field named.
import { type Static, Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { ChdbServerError } from "./errors.ts";

const MiB = 1024 * 1024;

export const OptionsSchema = Type.Object(
  {
    /** TCP port of the HTTP interface; 0 picks a free one (tests, benchmarks). */
    port: Type.Integer({ minimum: 0, maximum: 65535 }),
    /** Interface to bind; the local stack keeps to the loopback. */
    host: Type.String({ minLength: 1 }),
    /** The engine's persistent data directory (one process may own it at a time). */
    dataDir: Type.String({ minLength: 1 }),
    /** Insert data holding a blank line waits here as a file for FROM INFILE (see engine.ts). */
    spoolDir: Type.String({ minLength: 1 }),
    /** chdb Sessions shared by session-less requests: how many queries run at once. */
    poolSize: Type.Integer({ minimum: 1, maximum: 64 }),
    /** Requests waiting for a pooled Session beyond which the front answers 202 TOO_MANY_SIMULTANEOUS_QUERIES. */
    maxQueuedRequests: Type.Integer({ minimum: 0, maximum: 100_000 }),
    /** How long a request may wait for a pooled Session. */
    queueTimeoutMs: Type.Integer({ minimum: 1, maximum: 3_600_000 }),
    /**
     * How long a query may hold its engine session after its client left (abort, timeout,
     * dropped socket). The front kills the query at once; one still running after this is
     * left to finish on its own and its session is replaced by a fresh one.
     */
    abandonedQueryHoldMs: Type.Integer({ minimum: 0, maximum: 600_000 }),
    /** Decompressed request body (insert data or query text) held in memory at most. */
    maxBodyBytes: Type.Integer({ minimum: 1024, maximum: 4096 * MiB }),
    /** Request line plus headers (query parameters travel in the URL). */
    maxHeaderBytes: Type.Integer({ minimum: 16 * 1024, maximum: 16 * MiB }),
    /** Time to receive a whole request (headers and body). */
    requestTimeoutMs: Type.Integer({ minimum: 1000, maximum: 3_600_000 }),
    /** Idle keep-alive sockets are closed after this; announced in the Keep-Alive header. */
    keepAliveTimeoutSeconds: Type.Integer({ minimum: 1, maximum: 3600 }),
    /** Live `session_id` sessions (each holds one chdb Session of its own). */
    maxSessions: Type.Integer({ minimum: 0, maximum: 10_000 }),
    /** Idle lifetime of a session when the request names no `session_timeout` (ClickHouse: 60). */
    defaultSessionTimeoutSeconds: Type.Integer({ minimum: 1, maximum: 86_400 }),
    /** Largest `session_timeout` a request may ask for (ClickHouse: max_session_timeout 3600). */
    maxSessionTimeoutSeconds: Type.Integer({ minimum: 1, maximum: 86_400 }),
    /** On close, how long in-flight requests may finish before the engine is closed anyway. */
    shutdownGraceMs: Type.Integer({ minimum: 0, maximum: 600_000 }),
  },
  { additionalProperties: false },
);

export type ChdbServerOptions = Static<typeof OptionsSchema>;

export const defaultOptions: Omit<ChdbServerOptions, "dataDir" | "spoolDir"> = {
  port: 18123,
  host: "127.0.0.1",
  poolSize: 4,
  maxQueuedRequests: 1000,
  queueTimeoutMs: 60_000,
  abandonedQueryHoldMs: 2000,
  maxBodyBytes: 512 * MiB,
  maxHeaderBytes: 1 * MiB,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutSeconds: 30,
  maxSessions: 256,
  defaultSessionTimeoutSeconds: 60,
  maxSessionTimeoutSeconds: 3600,
  shutdownGraceMs: 10_000,
};

/** Merge over the defaults and validate; throws ChdbServerError("invalid_option") naming the field. */
export function resolveOptions(
  input: Partial<ChdbServerOptions> & { dataDir: string },
): ChdbServerOptions {
  const merged: Record<string, unknown> = { ...defaultOptions, spoolDir: `${input.dataDir}-spool` };
  for (const [key, value] of Object.entries(input)) if (value !== undefined) merged[key] = value;
  const first = Value.Errors(OptionsSchema, merged).First();
  if (first) {
    const field = first.path.replace(/^\//, "").replaceAll("/", ".") || "(options)";
    throw new ChdbServerError(
      "invalid_option",
      `${field}: ${first.message} (got ${JSON.stringify(first.value)})`,
      {
        field,
      },
    );
  }
  const options = merged as ChdbServerOptions;
  if (options.defaultSessionTimeoutSeconds > options.maxSessionTimeoutSeconds) {
    throw new ChdbServerError(
      "invalid_option",
      "defaultSessionTimeoutSeconds: must not exceed maxSessionTimeoutSeconds",
      {
        field: "defaultSessionTimeoutSeconds",
      },
    );
  }
  return options;
}
