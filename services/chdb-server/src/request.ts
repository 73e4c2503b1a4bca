// Reading a ClickHouse HTTP request: which URL parameters (and X-ClickHouse-* headers) are
// the protocol's own, which are query parameters and which are settings for the engine.
// Pure: no I/O, so it is tested beside the code.

/** URL parameters the HTTP interface consumes itself; everything else is a setting. */
const protocolParams = new Set([
  "query",
  "database",
  "default_format",
  "query_id",
  "session_id",
  "session_timeout",
  "session_check",
  "user",
  "password",
  "quota_key",
  "role",
  "compress",
  "decompress",
  "buffer_size",
  "client_protocol_version",
  "stacktrace",
]);

/**
 * Settings that steer the HTTP layer, not the engine: the front honours or ignores them
 * and never SETs them (chdb has no HTTP server and rejects some of them).
 */
const httpLayerSettings = new Set([
  "enable_http_compression",
  "http_zlib_compression_level",
  "http_response_buffer_size",
  "wait_end_of_query",
  "send_progress_in_http_headers",
  "http_headers_progress_interval_ms",
  "http_send_progress_interval_ms",
  "http_native_compression_disable_checksumming_on_decompress",
  "http_exception_tagging",
  "add_http_cors_header",
  "cancel_http_readonly_queries_on_client_close",
]);

export interface HttpQueryRequest {
  /** SQL from the `query` URL parameter (insert statements travel here, data in the body). */
  urlQuery: string | undefined;
  database: string | undefined;
  /** Output format when the SQL names none (ClickHouse: TabSeparated). */
  defaultFormat: string;
  queryId: string | undefined;
  sessionId: string | undefined;
  sessionTimeoutSeconds: number | undefined;
  sessionCheck: boolean;
  /** wait_end_of_query=1: run to the end before answering, so every error is an HTTP error. */
  waitEndOfQuery: boolean;
  /** enable_http_compression=1: the response may be compressed per Accept-Encoding. */
  responseCompression: boolean;
  /** `param_<name>` values in ClickHouse's escaped text form, as the client sent them. */
  queryParams: Array<[string, string]>;
  /** Engine settings for this query only. */
  settings: Array<[string, string]>;
}

export function readRequest(
  search: URLSearchParams,
  header: (name: string) => string | undefined,
): HttpQueryRequest {
  const queryParams: Array<[string, string]> = [];
  const settings = new Map<string, string>();
  for (const [key, value] of search) {
    if (key.startsWith("param_")) queryParams.push([key.slice("param_".length), value]);
    else if (!protocolParams.has(key) && !httpLayerSettings.has(key)) settings.set(key, value); // last one wins, like the server
  }
  const timeout = search.get("session_timeout");
  return {
    urlQuery: search.get("query") ?? undefined,
    database: search.get("database") ?? header("x-clickhouse-database") ?? undefined,
    defaultFormat: search.get("default_format") ?? header("x-clickhouse-format") ?? "TabSeparated",
    queryId: search.get("query_id") ?? undefined,
    sessionId: search.get("session_id") ?? undefined,
    sessionTimeoutSeconds: timeout === null ? undefined : Number(timeout),
    sessionCheck: search.get("session_check") === "1",
    waitEndOfQuery: search.get("wait_end_of_query") === "1",
    responseCompression: search.get("enable_http_compression") === "1",
    queryParams,
    settings: [...settings],
  };
}

/** Statements that only read: SELECT (FROM-first and parenthesized too), WITH, SHOW, DESCRIBE, EXPLAIN, EXISTS. */
const readOnlyStart = /^(?:SELECT|WITH|FROM|SHOW|DESC|DESCRIBE|EXPLAIN|EXISTS)\b/i;
/** Leading white space, comments (`--`, `#`, block) and opening parentheses. */
const statementLead = /^(?:\s|--[^\n]*(?:\n|$)|#[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/|\()*/;

/**
 * True when `sql` only reads. The front cancels a read whose client left; anything else (an
 * INSERT, DDL, ALTER, OPTIMIZE, SYSTEM, …) runs to completion, as on a server, whose
 * cancel_http_readonly_queries_on_client_close covers read-only queries only: a write cut in
 * the middle can leave a table written and the materialized views it feeds not.
 */
export function isReadOnlyStatement(sql: string): boolean {
  return readOnlyStart.test(sql.replace(statementLead, ""));
}

const identifier = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isIdentifier(name: string): boolean {
  return identifier.test(name);
}

/** A ClickHouse string literal whose value is exactly `text`. */
export function stringLiteral(text: string): string {
  return `'${text.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

/** A back-quoted ClickHouse identifier. */
export function quotedIdentifier(name: string): string {
  return `\`${name.replaceAll("\\", "\\\\").replaceAll("`", "\\`")}\``;
}

/**
 * The statements that put a chdb Session in the state the HTTP request describes: current
 * database, per-query settings, query parameters. `SET param_x = '<text>'` hands the engine
 * the same escaped text the HTTP interface gets in `param_x`, so it parses it the same way.
 * Names are checked by the caller (isIdentifier).
 */
export function stateStatements(input: {
  database: string;
  settings: ReadonlyArray<readonly [string, string]>;
  queryParams: ReadonlyArray<readonly [string, string]>;
}): string[] {
  return [
    `USE ${quotedIdentifier(input.database)}`,
    ...input.settings.map(([name, value]) => `SET ${name} = ${stringLiteral(value)}`),
    ...input.queryParams.map(([name, value]) => `SET param_${name} = ${stringLiteral(value)}`),
  ];
}

/** Reads `multipart/form-data` bodies (query and `param_*` parts), as clickhouse-js sends with use_multipart_params. */
export function readMultipart(body: Buffer, contentType: string): Map<string, string> | undefined {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
  const mark = boundary?.[1] ?? boundary?.[2];
  if (!mark) return undefined;
  const parts = new Map<string, string>();
  const delimiter = `--${mark}`;
  for (const raw of body.toString("utf8").split(delimiter).slice(1)) {
    if (raw.startsWith("--")) break;
    const headerEnd = raw.indexOf("\r\n\r\n");
    if (headerEnd < 0) continue;
    const name = /name="([^"]*)"/i.exec(raw.slice(0, headerEnd))?.[1];
    if (name === undefined) continue;
    parts.set(name, raw.slice(headerEnd + 4).replace(/\r\n$/, ""));
  }
  return parts;
}
