// Goal: the front sorts URL parameters the way ClickHouse's HTTP interface does and builds
// session state statements whose literals carry the client's exact text.
import { describe, expect, it } from "vitest";
import { readMultipart, readRequest, stateStatements, stringLiteral } from "./request.ts";

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
