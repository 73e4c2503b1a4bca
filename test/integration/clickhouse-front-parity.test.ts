// Goal: where the ClickHouse front once differed from a server, it answers as the server does,
// through the unmodified @clickhouse/client and plain HTTP: one-document formats are one
// document however many blocks the result has (totals, rows_before_limit_at_least and
// statistics included) while row formats with a header still stream one header; empty
// inserts succeed; invalid SQL is a syntax error (the server's implicit_select=0); query
// parameters do not outlive their query; errors are compressed when compression was asked. Point CLICKHOUSE_URL at a real server and every
// assertion holds there too.
import { Readable } from "node:stream";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { quietClickHouse as createClient, fixture } from "../support/fixture.ts";
import { clickhouseError } from "../support/refusals.ts";

const fx = fixture(import.meta.url);
const url = fx.urls.clickhouseUrl;
const db = fx.database;

const client = fx.clickhouseWithTables(
  "CREATE TABLE landing (id UInt32, s String) ENGINE = MergeTree ORDER BY id",
);

/** The body of a plain HTTP query (no client in between). */
async function httpBody(query: string): Promise<string> {
  const response = await fetch(`${url}/?database=${db}`, { method: "POST", body: query });
  expect(response.status).toBe(200);
  return response.text();
}

describe("whole-document formats", () => {
  it.each([1, 2, 10])("FORMAT JSON over %i blocks is one JSON document", async (blocks) => {
    const rows = blocks * 1000;
    const body = await httpBody(
      `SELECT number AS n FROM numbers(${rows}) SETTINGS max_block_size = 1000 FORMAT JSON`,
    );
    const document = JSON.parse(body) as {
      data: Array<{ n: number | string }>;
      rows: number;
      statistics: { rows_read: number };
    };
    expect([document.rows, document.data.length]).toEqual([rows, rows]);
    expect(Number(document.data.at(-1)?.n)).toBe(rows - 1);
    expect(document.statistics.rows_read).toBe(rows);
  });

  it("a streamed JSON result of 200,000 rows is one document through the client", async () => {
    const result = await client.query({
      query: "SELECT number AS n FROM numbers(200000)",
      format: "JSON",
    });
    const document = await result.json<{ n: string }>();
    expect([document.rows, document.data.length]).toEqual([200000, 200000]);
  });

  it("writes totals, extremes and rows_before_limit_at_least as the server does", async () => {
    const result = await client.query({
      query:
        "SELECT number % 3 AS k, count() AS c FROM numbers(10000) GROUP BY k WITH TOTALS ORDER BY k LIMIT 2 SETTINGS max_block_size = 1000, extremes = 1",
      format: "JSON",
    });
    const document = (await result.json()) as unknown as {
      data: Array<{ k: number; c: string }>;
      totals: { k: number; c: string };
      extremes: { min: { k: number }; max: { k: number } };
      rows_before_limit_at_least: number;
      statistics: object;
    };
    expect(document.data.map((row) => row.k)).toEqual([0, 1]);
    expect(Number(document.totals.c)).toBe(10000);
    expect([document.extremes.min.k, document.extremes.max.k]).toEqual([0, 1]);
    expect(document.rows_before_limit_at_least).toBe(3);
    expect(document).toHaveProperty("statistics");
  });

  it("XML, JSONCompact and PrettyCompact over 10 blocks are one document each", async () => {
    const over10 = "SELECT number AS n FROM numbers(10000) SETTINGS max_block_size = 1000";
    const xml = await httpBody(`${over10} FORMAT XML`);
    expect(xml.match(/<\?xml/g)).toHaveLength(1);
    expect(xml.match(/<row>/g)).toHaveLength(10000);
    const compact = JSON.parse(await httpBody(`${over10} FORMAT JSONCompact`)) as {
      data: unknown[];
    };
    expect(compact.data).toHaveLength(10000);
    const pretty = await httpBody(`${over10} FORMAT PrettyCompactNoEscapes`);
    expect(pretty.match(/┌─n─/g)?.length ?? 0).toBeLessThanOrEqual(1);
  });

  it("row formats with a header stream over 10 blocks with one header", async () => {
    const over10 = "SELECT number AS n FROM numbers(10000) SETTINGS max_block_size = 1000";
    const csv = (await httpBody(`${over10} FORMAT CSVWithNames`)).trimEnd().split("\n");
    expect([csv[0], csv.length, csv.at(-1)]).toEqual(['"n"', 10001, "9999"]);
    const result = await client.query({
      query: over10,
      format: "JSONCompactEachRowWithNamesAndTypes",
    });
    const rows: unknown[] = [];
    for await (const batch of result.stream()) for (const row of batch) rows.push(row.json());
    expect(rows.slice(0, 3)).toEqual([["n"], ["UInt64"], [0]]);
    expect([rows.length, rows.at(-1)]).toEqual([10002, [9999]]);
    const binary = Buffer.from(
      await (
        await fetch(`${url}/`, { method: "POST", body: `${over10} FORMAT RowBinaryWithNames` })
      ).arrayBuffer(),
    );
    // One header (1 column, named "n") then 10,000 UInt64 values.
    expect(binary.length).toBe(3 + 10000 * 8);
    expect(binary.readBigUInt64LE(binary.length - 8)).toBe(9999n);
  });
});

describe("empty inserts", () => {
  it("an empty stream and one closed before its first row insert nothing and succeed", async () => {
    await client.insert({ table: "landing", values: Readable.from([]), format: "JSONEachRow" });
    const closed = new Readable({ objectMode: true, read() {} });
    closed.push(null);
    await client.insert({ table: "landing", values: closed, format: "JSONEachRow" });
    const viaExec = await client.exec({
      query: "INSERT INTO landing FORMAT JSONEachRow",
      values: Readable.from([]),
    });
    viaExec.stream.resume();
    const rows = await (
      await client.query({
        query: "SELECT toString(count()) AS c FROM landing",
        format: "JSONEachRow",
      })
    ).json<{ c: string }>();
    expect(rows).toEqual([{ c: "0" }]);
  });
});

describe("server defaults", () => {
  it("invalid SQL is a syntax error, not run as a SELECT (implicit_select = 0)", async () => {
    const error = await clickhouseError(() => client.query({ query: "invalid_query" }));
    expect([error.code, error.type]).toEqual(["62", "SYNTAX_ERROR"]);
  });

  it("the settings clickhouse-local changes have the server's values", async () => {
    const rows = await (
      await client.query({
        query:
          "SELECT name, value FROM system.settings WHERE name IN ('implicit_select', 'allow_introspection_functions', 'storage_file_read_method', 'output_format_arrow_use_native_writer') ORDER BY name",
        format: "JSONEachRow",
      })
    ).json();
    expect(rows).toEqual([
      { name: "allow_introspection_functions", value: "0" },
      { name: "implicit_select", value: "0" },
      { name: "output_format_arrow_use_native_writer", value: "1" },
      { name: "storage_file_read_method", value: "pread" },
    ]);
  });
});

describe("query parameters", () => {
  it("are the sending query's only: a later query without them fails with code 456", async () => {
    const sent = await (
      await client.query({
        query: "SELECT {leak:String} AS v",
        query_params: { leak: "mine" },
        format: "JSONEachRow",
      })
    ).json();
    expect(sent).toEqual([{ v: "mine" }]);
    // Enough queries to land on every pooled engine session of the front.
    const later = await Promise.all(
      Array.from({ length: 12 }, () =>
        clickhouseError(() => client.query({ query: "SELECT {leak:String} AS v" })),
      ),
    );
    expect(new Set(later.map((error) => error.code))).toEqual(new Set(["456"]));
  });
});

describe("compressed errors", () => {
  it("an error asked for with gzip comes back gzip-encoded", async () => {
    const raw = await new Promise<{ headers: Record<string, unknown>; body: Buffer }>(
      (resolve, reject) => {
        import("node:http").then(({ request }) => {
          const req = request(
            `${url}/?enable_http_compression=1&query=${encodeURIComponent("SELECT * FROM no_such_table_here")}`,
            { headers: { "Accept-Encoding": "gzip" } },
            (res) => {
              const chunks: Buffer[] = [];
              res
                .on("data", (c: Buffer) => chunks.push(c))
                .on("end", () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
            },
          );
          req.on("error", reject).end();
        });
      },
    );
    expect(raw.headers["content-encoding"]).toBe("gzip");
    expect(raw.headers["x-clickhouse-exception-code"]).toBe("60");
    expect(gunzipSync(raw.body).toString()).toContain("no_such_table_here");
  });

  it("the client with response compression reads the error's code and text", async () => {
    const gz = createClient({ url, compression: { response: true } });
    try {
      const error = await clickhouseError(() => gz.query({ query: "invalid_query" }));
      expect([error.code, error.type]).toEqual(["62", "SYNTAX_ERROR"]);
      expect(error.message).toContain("Syntax error");
    } finally {
      await gz.close();
    }
  });
});
