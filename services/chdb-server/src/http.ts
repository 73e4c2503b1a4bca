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
import { pickResponseEncoding, requestDecoder, responseEncoder } from "./compression.ts";
import { type EngineSummary, isStreamingUnsupported } from "./engine.ts";
import {
  type ClickHouseFailure,
  engineFailure,
  FrontErrorCode,
  frontFailure,
  httpStatusFor,
} from "./errors.ts";
import type { ChdbServerOptions } from "./options.ts";
import {
  type HttpQueryRequest,
  isIdentifier,
  readMultipart,
  readRequest,
  stateStatements,
} from "./request.ts";
import { isFailure, type Lease, type NamedSessions, type SessionPool } from "./sessions.ts";

/** Pause before an in-band exception marker, so it is not coalesced with the rows before it. */
const MARKER_FLUSH_MS = 5;

export interface FrontContext {
  options: ChdbServerOptions;
  pool: SessionPool;
  sessions: NamedSessions;
  log: Logger;
  /** `SELECT version()` of the engine, quoted in error texts like the server does. */
  version: string;
  timezone: string;
}

/** wait_end_of_query=1 asks for the whole result before the first byte, like the server buffers it. */
class WholeQueryWanted extends Error {}

/** Thrown inside the handler for a failure the front words itself. */
class Refusal extends Error {
  readonly failure: ClickHouseFailure;
  constructor(failure: ClickHouseFailure) {
    super(failure.message);
    this.failure = failure;
  }
}

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

function contentTypeOf(format: string): string {
  const f = format.toLowerCase();
  if (f.startsWith("json")) return "application/json; charset=UTF-8";
  if (f.startsWith("csv")) return "text/csv; charset=UTF-8; header=absent";
  if (f.startsWith("tabseparated") || f.startsWith("tsv"))
    return "text/tab-separated-values; charset=UTF-8";
  if (f.includes("binary") || f === "native" || f.startsWith("arrow") || f === "parquet")
    return "application/octet-stream";
  return "text/plain; charset=UTF-8";
}

function sendFailure(
  context: FrontContext,
  res: ServerResponse,
  queryId: string,
  failure: ClickHouseFailure,
): string {
  const body = `${failure.message}\n`;
  res.writeHead(httpStatusFor(failure.code), {
    ...baseHeaders(context, queryId),
    "Content-Type": "text/plain; charset=UTF-8",
    "X-ClickHouse-Exception-Code": String(failure.code),
    "Content-Length": String(Buffer.byteLength(body)),
  });
  res.end(body);
  return `error ${failure.code}`;
}

/** Reads the (decoded) body, refusing more than maxBodyBytes. */
async function readBody(context: FrontContext, req: IncomingMessage): Promise<Buffer> {
  const decoder = requestDecoder(req.headers["content-encoding"]);
  if (decoder === null) {
    throw new Refusal(
      frontFailure(
        FrontErrorCode.BAD_ARGUMENTS,
        `Unknown Content-Encoding: ${req.headers["content-encoding"]}`,
        context.version,
      ),
    );
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
        throw new Refusal(
          frontFailure(
            FrontErrorCode.UNKNOWN_EXCEPTION,
            `Request body exceeds ${context.options.maxBodyBytes} bytes (maxBodyBytes of chdb-server)`,
            context.version,
          ),
        );
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof Refusal) throw error;
    throw new Refusal(
      frontFailure(
        FrontErrorCode.CANNOT_DECOMPRESS,
        `Cannot read the request body: ${(error as Error).message}`,
        context.version,
      ),
    );
  }
  return Buffer.concat(chunks, size);
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
  const request = readRequest(url.searchParams, (name) => {
    const value = req.headers[name];
    return Array.isArray(value) ? value[0] : value;
  });
  const queryId = request.queryId || randomUUID();
  if (url.pathname !== "/") {
    return sendFailure(
      context,
      res,
      queryId,
      frontFailure(
        FrontErrorCode.BAD_ARGUMENTS,
        `There is no handle ${url.pathname}`,
        context.version,
      ),
    );
  }
  let body: Buffer;
  try {
    body =
      req.method === "GET" || req.method === "HEAD"
        ? Buffer.alloc(0)
        : await readBody(context, req);
  } catch (error) {
    if (error instanceof Refusal) {
      res.setHeader("Connection", "close");
      return sendFailure(context, res, queryId, error.failure);
    }
    throw error;
  }
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
      return sendFailure(
        context,
        res,
        queryId,
        frontFailure(FrontErrorCode.UNKNOWN_SETTING, `Unknown setting '${name}'`, context.version),
      );
    }
  }
  for (const [name] of request.queryParams) {
    if (!isIdentifier(name)) {
      return sendFailure(
        context,
        res,
        queryId,
        frontFailure(
          FrontErrorCode.BAD_ARGUMENTS,
          `Invalid query parameter name '${name}'`,
          context.version,
        ),
      );
    }
  }

  const leased = request.sessionId
    ? context.sessions.acquire(
        request.sessionId,
        request.sessionCheck,
        request.sessionTimeoutSeconds,
      )
    : await context.pool.acquire();
  if (isFailure(leased)) {
    return sendFailure(
      context,
      res,
      queryId,
      frontFailure(leased.failure.code, leased.failure.text, context.version),
    );
  }
  try {
    try {
      await prepareSession(leased, request);
    } catch (error) {
      return sendFailure(context, res, queryId, engineFailure(error, context.version));
    }
    // The statement in `query` with data in the body is an insert (the server concatenates them
    // the same way); otherwise the whole SQL is in `query` or in the body.
    if (request.urlQuery !== undefined && body.length > 0)
      return await runInsert(context, leased, request, queryId, body, res);
    const sql = request.urlQuery ?? body.toString("utf8");
    return await runQuery(context, leased, request, queryId, sql, req, res);
  } finally {
    if (request.sessionId) context.sessions.release(request.sessionId);
    else context.pool.release(leased);
  }
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
  if (lease.kind === "pooled") {
    lease.resetStatements = names.map((name) => `SET ${name} = DEFAULT`);
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
      : `SET ${name} = DEFAULT`;
  });
}

async function runInsert(
  context: FrontContext,
  lease: Lease,
  request: HttpQueryRequest,
  queryId: string,
  data: Buffer,
  res: ServerResponse,
): Promise<string> {
  let summary: EngineSummary;
  try {
    summary = await lease.engine.insert(request.urlQuery ?? "", data, context.options.spoolDir);
  } catch (error) {
    const failure = engineFailure(error, context.version);
    // The server inserts nothing and answers 200 for an empty body; chdb says NO_DATA_TO_INSERT.
    if (failure.code !== 108) return sendFailure(context, res, queryId, failure);
    summary = { readRows: 0, readBytes: 0, writtenRows: 0, writtenBytes: 0, elapsedSeconds: 0 };
  }
  res.writeHead(200, {
    ...baseHeaders(context, queryId),
    "Content-Type": "text/plain; charset=UTF-8",
    "X-ClickHouse-Summary": summaryHeader(summary),
    "Content-Length": "0",
  });
  res.end();
  return `insert ${summary.writtenRows} rows`;
}

async function runQuery(
  context: FrontContext,
  lease: Lease,
  request: HttpQueryRequest,
  queryId: string,
  sql: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<string> {
  const format = request.defaultFormat;
  const encoding = request.responseCompression
    ? pickResponseEncoding(req.headers["accept-encoding"])
    : undefined;
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
  const abort = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) abort.abort();
  };
  res.on("close", onClose);
  let rows = 0;
  try {
    if (request.waitEndOfQuery) throw new WholeQueryWanted();
    for await (const chunk of lease.engine.stream(sql, format, abort.signal)) {
      out ??= start();
      rows += chunk.numRows;
      if (!out.write(chunk.raw())) await Promise.race([once(out, "drain"), once(res, "close")]);
      if (abort.signal.aborted) return "client went away";
    }
    out ??= start();
    out.end();
    return `stream ${rows} rows`;
  } catch (error) {
    if (abort.signal.aborted) return "client went away";
    if (out === undefined && (error instanceof WholeQueryWanted || isStreamingUnsupported(error))) {
      // DDL, INSERT … VALUES, SHOW, SET …, or wait_end_of_query=1: run whole, then answer.
      let result: Awaited<ReturnType<typeof lease.engine.queryAll>>;
      try {
        result = await lease.engine.queryAll(sql, format);
      } catch (inner) {
        return sendFailure(context, res, queryId, engineFailure(inner, context.version));
      }
      start(result.summary).end(result.bytes);
      return `query ${result.bytes.length} bytes`;
    }
    const failure = engineFailure(error, context.version);
    if (out === undefined) return sendFailure(context, res, queryId, failure);
    // Headers and some rows are gone already: tell the client in-band, as the server does.
    const message = `${failure.message}\n`;
    const marker = `\r\n__exception__\r\n${exceptionTag}\r\n${message}${Buffer.byteLength(message)} ${exceptionTag}\r\n__exception__\r\n`;
    // The client reads the exception from the last chunk it receives: let the rows already
    // written leave first, so the marker travels whole in a chunk (and segment) of its own.
    if (out.writableNeedDrain) await Promise.race([once(out, "drain"), once(res, "close")]);
    await new Promise((resolve) => setTimeout(resolve, MARKER_FLUSH_MS));
    out.end(marker);
    return `stream error ${failure.code} after ${rows} rows`;
  } finally {
    res.off("close", onClose);
  }
}
