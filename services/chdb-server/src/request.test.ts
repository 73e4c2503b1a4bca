// Goal: the front sorts URL parameters the way ClickHouse's HTTP interface does and builds
// session state statements whose literals carry the client's exact text.
import { describe, expect, it } from "vitest";
import {
  isReadOnlyStatement,
  readMultipart,
  readRequest,
  stateStatements,
  stringLiteral,
} from "./request.ts";

describe("readRequest", () => {
  it("separates protocol parameters, query parameters and settings", () => {
    const search = new URLSearchParams(
      "query_id=q1&param_s=a%5Ctb&max_threads=2&enable_http_compression=1&database=d&session_id=s&default_format=JSON&max_threads=3",
    );
    const request = readRequest(search, () => undefined);
    expect(request).toMatchObject({
      queryId: "q1",
      database: "d",
      sessionId: "s",
      defaultFormat: "JSON",
      responseCompression: true,
      queryParams: [["s", "a\\tb"]],
      settings: [["max_threads", "3"]],
    });
  });
  it("defaults to TabSeparated and reads X-ClickHouse-Format", () => {
    expect(readRequest(new URLSearchParams(""), () => undefined).defaultFormat).toBe(
      "TabSeparated",
    );
    expect(
      readRequest(new URLSearchParams(""), (n) => (n === "x-clickhouse-format" ? "CSV" : undefined))
        .defaultFormat,
    ).toBe("CSV");
  });
});

describe("stateStatements", () => {
  it("quotes values so the engine sees the client's text unchanged", () => {
    expect(stringLiteral("it's a \\t")).toBe("'it\\'s a \\\\t'");
    expect(
      stateStatements({
        database: "d`b",
        settings: [["max_threads", "1"]],
        queryParams: [["x", "a'b"]],
      }),
    ).toEqual(["USE `d\\`b`", "SET max_threads = '1'", "SET param_x = 'a\\'b'"]);
  });
});

describe("readMultipart", () => {
  it("reads named parts", () => {
    const body = Buffer.from(
      '--B\r\nContent-Disposition: form-data; name="query"\r\n\r\nSELECT 1\r\n--B\r\nContent-Disposition: form-data; name="param_v"\r\n\r\n[1,2]\r\n--B--\r\n',
    );
    expect([...(readMultipart(body, "multipart/form-data; boundary=B") ?? [])]).toEqual([
      ["query", "SELECT 1"],
      ["param_v", "[1,2]"],
    ]);
  });
});

describe("isReadOnlyStatement", () => {
  it("knows reads, after comments and parentheses, from writes", () => {
    for (const sql of [
      "SELECT 1",
      "  select 1",
      "(SELECT 1) UNION ALL (SELECT 2)",
      "-- a comment\nSELECT 1",
      "/* a\ncomment */ WITH 1 AS x SELECT x",
      "# a comment\nSHOW TABLES",
      "FROM t SELECT count()",
      "DESCRIBE TABLE t",
      "desc t",
      "EXPLAIN SELECT 1",
      "EXISTS TABLE t",
    ])
      expect([sql, isReadOnlyStatement(sql)]).toEqual([sql, true]);
    for (const sql of [
      "INSERT INTO t SELECT 1",
      "-- SELECT\nINSERT INTO t VALUES (1)",
      "CREATE TABLE t AS SELECT 1",
      "ALTER TABLE t DELETE WHERE 1",
      "OPTIMIZE TABLE t FINAL",
      "TRUNCATE TABLE t",
      "SYSTEM FLUSH LOGS",
      "SELECTED",
      "",
    ])
      expect([sql, isReadOnlyStatement(sql)]).toEqual([sql, false]);
  });
});
