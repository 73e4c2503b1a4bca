// ClickHouse's HTTP interface over the engine: /ping, queries from the URL or the body,
// inserts (statement in `query`, data in the body), sessions, compression both ways, errors
// with X-ClickHouse-Exception-Code, and an exception in the middle of a stream written the
// way ClickHouse 25.11+ does (after an X-ClickHouse-Exception-Tag). No SQL of its own: the
// client's statement reaches the engine unchanged; only session state (USE, SET) is added.
import { randomBytes, randomUUID } from "node:crypto";
import { once } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Writable } from "node:stream";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import {
  encodeWhole,
  pickResponseEncoding,
  requestDecoder,
  responseEncoder,
} from "./compression.ts";
import {
  type EngineKiller,
  type EngineSession,
  type EngineSummary,
  isStreamingUnsupported,
} from "./engine.ts";
import {
  type ClickHouseFailure,
  engineFailure,
  FrontErrorCode,
  frontFailure,
  httpStatusFor,
} from "./errors.ts";
import { outputFormatOf, outputShape } from "./formats.ts";
import type { ChdbServerOptions } from "./options.ts";
import {
  type HttpQueryRequest,
  isIdentifier,
  isReadOnlyStatement,
  readMultipart,
  readRequest,
  stateStatements,
} from "./request.ts";
import { isFailure, type Lease, type NamedSessions, type SessionPool } from "./sessions.ts";

/** Pause before an in-band exception marker, so it is not coalesced with the rows before it. */
const MARKER_FLUSH_MS = 5;
/** While a query whose client left still runs, the kill is sent again this often (it may have raced the query's start). */
const KILL_RETRY_MS = 100;
/** ClickHouse's NO_DATA_TO_INSERT, which the server never answers for an empty insert body. */
const NO_DATA_TO_INSERT = 108;

export interface FrontContext {
  options: ChdbServerOptions;
  pool: SessionPool;
  sessions: NamedSessions;
  /** Cancels the query of a session whose client left. */
  killer: EngineKiller;
  metrics: Registry;
  log: Logger;
  /** `SELECT version()` of the engine, quoted in error texts like the server does. */
  version: string;
  timezone: string;
}

/** A request body as read, or the failure the front answers in ClickHouse's words instead. */
type BodyRead = { ok: true; body: Buffer } | { ok: false; failure: ClickHouseFailure };

export function createHandler(
  context: FrontContext,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const startedAt = performance.now();
    handle(context, req, res).then(
      (outcome) => {
        context.log.debug(
          {
            method: req.method,
            url: req.url?.slice(0, 200),
            outcome,
            ms: Math.round(performance.now() - startedAt),
          },
          "request",
        );
      },
      (error: unknown) => {
        context.log.error({ err: error, url: req.url?.slice(0, 200) }, "request handler failed");
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      },
    );
  };
}

function baseHeaders(context: FrontContext, queryId: string): Record<string, string> {
  return {
    "X-ClickHouse-Server-Display-Name": "chdb-server",
    "X-ClickHouse-Query-Id": queryId,
    "X-ClickHouse-Timezone": context.timezone,
    "Keep-Alive": `timeout=${context.options.keepAliveTimeoutSeconds}`,
  };
}

function summaryHeader(summary: EngineSummary | undefined): string {
  const s = summary ?? {
    readRows: 0,
    readBytes: 0,
    writtenRows: 0,
    writtenBytes: 0,
    elapsedSeconds: 0,
  };
  return JSON.stringify({
    read_rows: String(s.readRows),
    read_bytes: String(s.readBytes),
    written_rows: String(s.writtenRows),
    written_bytes: String(s.writtenBytes),
    total_rows_to_read: "0",
    result_rows: String(s.writtenRows > 0 ? s.writtenRows : s.readRows),
    result_bytes: String(s.writtenRows > 0 ? s.writtenBytes : s.readBytes),
    elapsed_ns: String(Math.round(s.elapsedSeconds * 1e9)),
  });
}

/** The server's Content-Type for an output format (its formats' getContentType). */
function contentTypeOf(format: string): string {
  const f = format.toLowerCase();
  if (["jsoneachrow", "jsonlines", "ndjson", "jsonstringseachrow"].includes(f))
    return "application/x-ndjson; charset=UTF-8";
  if (f.startsWith("json")) return "application/json; charset=UTF-8";
  if (f.startsWith("csv"))
    return `text/csv; charset=UTF-8; header=${f.includes("withnames") ? "present" : "absent"}`;
  if (f.startsWith("tabseparated") || f.startsWith("tsv"))
    return "text/tab-separated-values; charset=UTF-8";
  if (f === "xml") return "application/xml; charset=UTF-8";
  if (f === "markdown" || f === "md") return "text/markdown; charset=UTF-8";
  if (f.includes("binary") || f === "native" || f.startsWith("arrow") || f === "parquet")
    return "application/octet-stream";
  return "text/plain; charset=UTF-8";
}

/** The error as the server sends it; compressed like any response when the client asked for compression. */
function sendFailure(
  context: FrontContext,
  res: ServerResponse,
  queryId: string,
  failure: ClickHouseFailure,
  encoding?: string,
): string {
  if (res.destroyed) return `error ${failure.code} (client gone)`;
  const text = Buffer.from(`${failure.message}\n`);
  const body = encoding ? encodeWhole(encoding, text) : text;
  res.writeHead(httpStatusFor(failure.code), {
    ...baseHeaders(context, queryId),
    "Content-Type": "text/plain; charset=UTF-8",
    "X-ClickHouse-Exception-Code": String(failure.code),
    "Content-Length": String(body.length),
    ...(encoding ? { "Content-Encoding": encoding } : {}),
  });
  res.end(body);
  return `error ${failure.code}`;
}

/** Resolves when `out` takes more data, or at once when the client has left. */
async function drained(out: Writable, left: AbortSignal): Promise<void> {
  if (left.aborted) return;
  try {
    await once(out, "drain", { signal: left });
  } catch {
    // The client left (or the socket failed): the caller looks at `left`.
  }
}

/** Reads the (decoded) body, refusing more than maxBodyBytes. */
async function readBody(context: FrontContext, req: IncomingMessage): Promise<BodyRead> {
  const decoder = requestDecoder(req.headers["content-encoding"]);
  if (decoder === null) {
    return {
      ok: false,
      failure: frontFailure(
        FrontErrorCode.BAD_ARGUMENTS,
        `Unknown Content-Encoding: ${req.headers["content-encoding"]}`,
        context.version,
      ),
    };
  }
  const source: AsyncIterable<Buffer> = decoder ? req.pipe(decoder) : req;
  if (decoder) req.on("error", (error) => decoder.destroy(error));
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of source) {
      size += chunk.length;
      if (size > context.options.maxBodyBytes) {
        req.resume();
        return {
          ok: false,
          failure: frontFailure(
            FrontErrorCode.UNKNOWN_EXCEPTION,
            `Request body exceeds ${context.options.maxBodyBytes} bytes (maxBodyBytes of chdb-server)`,
            context.version,
          ),
        };
      }
      chunks.push(chunk);
    }
  } catch (error) {
    return {
      ok: false,
      failure: frontFailure(
        FrontErrorCode.CANNOT_DECOMPRESS,
        `Cannot read the request body: ${(error as Error).message}`,
        context.version,
      ),
    };
  }
  return { ok: true, body: Buffer.concat(chunks, size) };
}

async function handle(
  context: FrontContext,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<string> {
  const url = new URL(req.url ?? "/", "http://front");
  if (url.pathname === "/ping") {
    res
      .writeHead(200, { "Content-Type": "text/plain; charset=UTF-8", "Content-Length": "4" })
      .end("Ok.\n");
    return "ping";
  }
  if (url.pathname === "/metrics") {
    const text = await context.metrics.metrics();
    res.writeHead(200, { "Content-Type": context.metrics.contentType }).end(text);
    return "metrics";
  }
  // The client's departure: the response closed before it was complete (an abort, a
  // timeout, a dropped socket). Everything that waits for the client or the engine stops on it.
  const departure = new AbortController();
  const left = departure.signal;
  res.on("close", () => {
    if (!res.writableFinished) departure.abort();
  });
  const request = readRequest(url.searchParams, (name) => {
    const value = req.headers[name];
    return Array.isArray(value) ? value[0] : value;
  });
  const queryId = request.queryId || randomUUID();
  const encoding = request.responseCompression
    ? pickResponseEncoding(req.headers["accept-encoding"])
    : undefined;
  /** Answers with a failure the front raises itself, worded like the server's. */
  const refuse = (code: number, text: string) =>
    sendFailure(context, res, queryId, frontFailure(code, text, context.version), encoding);
  if (url.pathname !== "/") {
    return refuse(FrontErrorCode.BAD_ARGUMENTS, `There is no handle ${url.pathname}`);
  }
  let read: BodyRead;
  try {
    read =
      req.method === "GET" || req.method === "HEAD"
        ? { ok: true, body: Buffer.alloc(0) }
        : await readBody(context, req);
  } catch (error) {
    if (left.aborted) return "client went away";
    throw error;
  }
  if (!read.ok) {
    if (left.aborted) return "client went away";
    res.setHeader("Connection", "close");
    return sendFailure(context, res, queryId, read.failure, encoding);
  }
  let body = read.body;
  const contentType = req.headers["content-type"] ?? "";
  if (contentType.startsWith("multipart/form-data")) {
    const parts = readMultipart(body, contentType);
    body = Buffer.alloc(0);
    for (const [name, value] of parts ?? []) {
      if (name === "query") body = Buffer.from(value);
      else if (name.startsWith("param_"))
        request.queryParams.push([name.slice("param_".length), value]);
    }
  }
  if (request.urlQuery === undefined && body.length === 0) {
    res
      .writeHead(200, { "Content-Type": "text/plain; charset=UTF-8", "Content-Length": "4" })
      .end("Ok.\n");
    return "ok";
  }
  for (const [name] of request.settings) {
    if (!isIdentifier(name)) {
      return refuse(FrontErrorCode.UNKNOWN_SETTING, `Unknown setting '${name}'`);
    }
  }
  for (const [name] of request.queryParams) {
    if (!isIdentifier(name)) {
      return refuse(FrontErrorCode.BAD_ARGUMENTS, `Invalid query parameter name '${name}'`);
    }
  }

  const leased = request.sessionId
    ? context.sessions.acquire(
        request.sessionId,
        request.sessionCheck,
        request.sessionTimeoutSeconds,
      )
    : await context.pool.acquire(left);
  if (left.aborted) {
    if (!isFailure(leased)) {
      if (request.sessionId) context.sessions.release(request.sessionId);
      else context.pool.release(leased, true);
    }
    return "client went away";
  }
  if (isFailure(leased)) {
    return refuse(leased.failure.code, leased.failure.text);
  }
  // The statement in `query` with data in the body is an insert (the server concatenates them
  // the same way); otherwise the whole SQL is in `query` or in the body.
  const isInsert = request.urlQuery !== undefined && body.length > 0;
  const sql = isInsert ? "" : (request.urlQuery ?? body.toString("utf8"));
  // A read whose client left is killed; a write (an insert whose data is all here, DDL, …)
  // runs to completion, as on a server.
  const killable = !isInsert && isReadOnlyStatement(sql);
  const work = (async (): Promise<string> => {
    try {
      await prepareSession(leased, request);
    } catch (error) {
      return sendFailure(context, res, queryId, engineFailure(error, context.version), encoding);
    }
    if (left.aborted) return "client went away";
    if (isInsert) return await runInsert(context, leased, request, queryId, body, res, encoding);
    return await runQuery(context, leased, request, queryId, sql, encoding, left, res);
  })();
  let held = true;
  try {
    const outcome = await untilDoneOrHeldTooLong(context, leased.engine, work, left, killable);
    if (outcome !== undefined) return outcome;
    // The query still runs abandonedQueryHoldMs after its client left: a fresh session takes
    // its place; chdb closes this one when the native call returns (a write ends first).
    held = false;
    if (request.sessionId) context.sessions.retire(request.sessionId);
    else context.pool.retire(leased);
    context.log.warn(
      { queryId, holdMs: context.options.abandonedQueryHoldMs, killed: killable },
      killable
        ? "abandoned query still running: session retired"
        : "write of a client that left still running: session retired, the write goes on",
    );
    return "client went away (session retired)";
  } finally {
    if (held) {
      if (request.sessionId) context.sessions.release(request.sessionId);
      else context.pool.release(leased, left.aborted);
    }
  }
}

/**
 * The request's outcome once its work is done; undefined when its client left and the work
 * still runs abandonedQueryHoldMs later. As soon as the client leaves, a `killable` query
 * running on the session is killed (again every KILL_RETRY_MS, in case the kill came before
 * the query was registered), so the session is normally free within a block's time. A write
 * is not: cut between its table and the materialized views that table feeds, it would leave
 * the table written and the views not.
 */
function untilDoneOrHeldTooLong(
  context: FrontContext,
  engine: EngineSession,
  work: Promise<string>,
  left: AbortSignal,
  killable: boolean,
): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    let killer: NodeJS.Timeout | undefined;
    let bound: NodeJS.Timeout | undefined;
    const stop = () => {
      clearInterval(killer);
      clearTimeout(bound);
      left.removeEventListener("abort", onLeft);
    };
    const killNow = () => {
      if (engine.inEngine) context.killer.kill(engine);
    };
    function onLeft() {
      if (killable) {
        killNow();
        killer = setInterval(killNow, KILL_RETRY_MS);
      }
      bound = setTimeout(() => {
        stop();
        resolve(undefined);
      }, context.options.abandonedQueryHoldMs);
    }
    work.then(
      (outcome) => {
        stop();
        resolve(outcome);
      },
      (error: unknown) => {
        stop();
        reject(error);
      },
    );
    if (left.aborted) onLeft();
    else left.addEventListener("abort", onLeft, { once: true });
  });
}

/**
 * Brings the Session to the request's state: undo the previous request's per-query
 * settings, then database, settings and parameters of this one. A pooled Session always
 * starts from `default`; a named one keeps what its own earlier requests USEd and SET.
 */
async function prepareSession(lease: Lease, request: HttpQueryRequest): Promise<void> {
  const reset = lease.resetStatements;
  lease.resetStatements = [];
  if (reset.length > 0) {
    try {
      await lease.engine.run(reset);
    } catch {
      // A reset of a setting the engine refused earlier fails too; undo the rest one by one.
      for (const statement of reset) await lease.engine.run([statement]).catch(() => undefined);
    }
  }
  const names = request.settings.map(([name]) => name);
  if (lease.kind === "pooled" && request.queryParams.length > 0) lease.carriesParams = true;
  if (lease.kind === "pooled") {
    lease.resetStatements = names.map((name) => lease.engine.resetStatement(name));
  } else if (names.length > 0) {
    lease.resetStatements = await snapshotSettings(lease, names);
  }
  const statements = stateStatements({
    database: request.database ?? "default",
    settings: request.settings,
    queryParams: request.queryParams,
  });
  // A named session keeps its own current database unless the request names one.
  await lease.engine.run(
    lease.kind === "named" && request.database === undefined ? statements.slice(1) : statements,
  );
}

/** Statements restoring a named session's current values of `names` after one query. */
async function snapshotSettings(lease: Lease, names: string[]): Promise<string[]> {
  const list = names.map((name) => `'${name}'`).join(", ");
  const { bytes } = await lease.engine.queryAll(
    `SELECT name, value, changed FROM system.settings WHERE name IN (${list})`,
    "JSONEachRow",
  );
  const rows = Buffer.from(bytes)
    .toString("utf8")
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as { name: string; value: string; changed: number });
  return names.map((name) => {
    const row = rows.find((r) => r.name === name);
    return row?.changed
      ? `SET ${name} = '${row.value.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`
      : lease.engine.resetStatement(name);
  });
}

const noSummary: EngineSummary = {
  readRows: 0,
  readBytes: 0,
  writtenRows: 0,
  writtenBytes: 0,
  elapsedSeconds: 0,
};

/** An insert's answer: 200, no body, its summary. */
function sendInserted(
  context: FrontContext,
  res: ServerResponse,
  queryId: string,
  summary: EngineSummary,
): string {
  res.writeHead(200, {
    ...baseHeaders(context, queryId),
    "Content-Type": "text/plain; charset=UTF-8",
    "X-ClickHouse-Summary": summaryHeader(summary),
    "Content-Length": "0",
  });
  res.end();
  return `insert ${summary.writtenRows} rows`;
}

async function runInsert(
  context: FrontContext,
  lease: Lease,
  request: HttpQueryRequest,
  queryId: string,
  data: Buffer,
  res: ServerResponse,
  encoding: string | undefined,
): Promise<string> {
  let summary: EngineSummary;
  try {
    summary = await lease.engine.insert(request.urlQuery ?? "", data, context.options.spoolDir);
  } catch (error) {
    const failure = engineFailure(error, context.version);
    // Data of no rows (whitespace, say): the server inserts nothing and answers 200.
    if (failure.code !== NO_DATA_TO_INSERT)
      return sendFailure(context, res, queryId, failure, encoding);
    summary = noSummary;
  }
  return sendInserted(context, res, queryId, summary);
}

async function runQuery(
  context: FrontContext,
  lease: Lease,
  request: HttpQueryRequest,
  queryId: string,
  sql: string,
  encoding: string | undefined,
  left: AbortSignal,
  res: ServerResponse,
): Promise<string> {
  const format = outputFormatOf(sql, request.defaultFormat);
  const shape = outputShape(format);
  const exceptionTag = randomBytes(8).toString("hex");
  const headers = (summary?: EngineSummary): Record<string, string> => ({
    ...baseHeaders(context, queryId),
    "Content-Type": contentTypeOf(format),
    "X-ClickHouse-Format": format,
    "X-ClickHouse-Exception-Tag": exceptionTag,
    ...(summary ? { "X-ClickHouse-Summary": summaryHeader(summary) } : {}),
    ...(encoding ? { "Content-Encoding": encoding } : {}),
  });
  let out: Writable | undefined;
  const start = (summary?: EngineSummary): Writable => {
    res.writeHead(200, headers(summary));
    if (!encoding) return res;
    const encoder = responseEncoder(encoding);
    encoder.pipe(res);
    return encoder;
  };
  /** Runs the query whole and answers with the result at once, as the server buffers it. */
  const runWhole = async (): Promise<string> => {
    if (left.aborted) return "client went away";
    let result: Awaited<ReturnType<typeof lease.engine.queryAll>>;
    try {
      result = await lease.engine.queryAll(sql, request.defaultFormat);
    } catch (error) {
      if (left.aborted) return "client went away";
      const failure = engineFailure(error, context.version);
      // An insert whose data (in the body after the statement, or none) held no rows: the
      // server inserts nothing and answers 200; the engine says NO_DATA_TO_INSERT.
      if (failure.code === NO_DATA_TO_INSERT && /^\s*INSERT\b/i.test(sql))
        return sendInserted(context, res, queryId, noSummary);
      return sendFailure(context, res, queryId, failure, encoding);
    }
    if (left.aborted) return "client went away";
    start(result.summary).end(result.bytes);
    return `query ${result.bytes.length} bytes`;
  };
  // One document (JSON, XML, Pretty, Parquet, …) is written by one engine call: streamed, the
  // engine would write a document per block. wait_end_of_query=1 asks for the whole result.
  if (request.waitEndOfQuery || shape.kind === "document") return runWhole();
  let rows = 0;
  try {
    for await (const chunk of lease.engine.stream(sql, request.defaultFormat, left)) {
      let bytes = chunk.raw();
      if (out === undefined) out = start();
      else if (shape.kind === "headed-rows") bytes = shape.laterBlock(bytes);
      rows += chunk.numRows;
      if (!out.write(bytes)) await drained(out, left);
      if (left.aborted) return "client went away";
    }
    out ??= start();
    out.end();
    return `stream ${rows} rows`;
  } catch (error) {
    if (left.aborted) return "client went away";
    // DDL, INSERT … VALUES, SHOW, SET …: the engine cannot stream them; run whole, then answer.
    if (out === undefined && isStreamingUnsupported(error)) return runWhole();
    const failure = engineFailure(error, context.version);
    if (out === undefined) return sendFailure(context, res, queryId, failure, encoding);
    // Headers and some rows are gone already: tell the client in-band, as the server does.
    const message = `${failure.message}\n`;
    const marker = `\r\n__exception__\r\n${exceptionTag}\r\n${message}${Buffer.byteLength(message)} ${exceptionTag}\r\n__exception__\r\n`;
    // The client reads the exception from the last chunk it receives: let the rows already
    // written leave first, so the marker travels whole in a chunk (and segment) of its own.
    if (out.writableNeedDrain) await drained(out, left);
    await new Promise((resolve) => setTimeout(resolve, MARKER_FLUSH_MS));
    out.end(marker);
    return `stream error ${failure.code} after ${rows} rows`;
  }
}
