// Goal: the ClickHouse HTTP front (services/chdb-server) serves the unmodified
// @clickhouse/client the way a real ClickHouse server does: ping, command, inserts in four
// formats from arrays and streams, parameters, JSON and streamed rows, per-query settings,
// the database option, sessions, gzip both ways, ClickHouse's own errors (also in the middle
// of a stream) and queries that run in parallel. Point CLICKHOUSE_URL at a real server and
// every assertion holds there too.
import { Readable } from "node:stream";
import { gunzipSync, gzipSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import { quietClickHouse as createClient, fixture } from "../support/fixture.ts";
import { clickhouseError, streamError } from "../support/refusals.ts";

const fx = fixture(import.meta.url);
const { iso } = fx;
const url = fx.urls.clickhouseUrl;
const db = fx.database;

const client = fx.clickhouseWithTables(
  "CREATE TABLE events (id UInt32, user String, tokens Int64, tags Array(String)) ENGINE = MergeTree ORDER BY id",
);

async function rowsOf<T>(query: string, query_params?: Record<string, unknown>): Promise<T[]> {
  const result = await client.query({ query, query_params, format: "JSONEachRow" });
  return result.json<T>();
}

describe("ping", () => {
  it("answers the /ping endpoint and the SELECT form", async () => {
    expect(await client.ping()).toEqual({ success: true });
    expect(await client.ping({ select: true })).toEqual({ success: true });
    const raw = await fetch(`${url}/ping`);
    expect([raw.status, await raw.text()]).toEqual([200, "Ok.\n"]);
  });
});

describe("command", () => {
  it("creates a table the engine then lists", async () => {
    await client.command({ query: "CREATE TABLE cmd_probe (x UInt8) ENGINE = Memory" });
    const tables = await rowsOf<{ name: string }>(
      "SELECT name FROM system.tables WHERE database = currentDatabase() AND name = 'cmd_probe'",
    );
    expect(tables).toEqual([{ name: "cmd_probe" }]);
    await client.command({ query: "INSERT INTO cmd_probe VALUES (1), (2), (3)" });
    expect(await rowsOf("SELECT toString(sum(x)) AS s FROM cmd_probe")).toEqual([{ s: "6" }]);
  });
});

describe("insert", () => {
  beforeAll(async () => {
    await client.command({
      query: "CREATE TABLE ins (id UInt32, name String, n Int64) ENGINE = MergeTree ORDER BY id",
    });
  });
  const row = (id: number) => ({ id, name: `n${id}\t"q'\\`, n: -id * 1_000_000_000_000 });
  const expectRows = async (from: number, to: number) => {
    const got = await rowsOf<{ id: number; name: string; n: string }>(
      "SELECT id, name, toString(n) AS n FROM ins WHERE id BETWEEN {a:UInt32} AND {b:UInt32} ORDER BY id",
      { a: from, b: to },
    );
    expect(got).toEqual(
      Array.from({ length: to - from + 1 }, (_, i) => ({
        ...row(from + i),
        n: String(row(from + i).n),
      })),
    );
  };

  it("JSONEachRow from an array and from an object stream", async () => {
    const result = await client.insert({
      table: "ins",
      values: [row(1), row(2)],
      format: "JSONEachRow",
    });
    expect(result.summary?.written_rows).toBe("2");
    await client.insert({
      table: "ins",
      values: Readable.from([row(3), row(4), row(5)]),
      format: "JSONEachRow",
    });
    await expectRows(1, 5);
  });

  it("JSONCompactEachRow from an array and from an object stream", async () => {
    const compact = (id: number) => Object.values(row(id));
    await client.insert({
      table: "ins",
      values: [compact(10), compact(11)],
      format: "JSONCompactEachRow",
    });
    await client.insert({
      table: "ins",
      values: Readable.from([compact(12)]),
      format: "JSONCompactEachRow",
    });
    await expectRows(10, 12);
  });

  it("CSV from an array of lines and from a byte stream", async () => {
    const csv = (id: number) => `${id},"n${id}\t""q'\\",${row(id).n}\n`;
    await client.insert({
      table: "ins",
      values: Readable.from([[20, 21].map(csv).join("")], { objectMode: false }),
      format: "CSV",
    });
    await client.insert({
      table: "ins",
      values: Readable.from([csv(22), csv(23)], { objectMode: false }),
      format: "CSV",
    });
    await expectRows(20, 23);
  });

  it("RowBinary from a buffer built from an array and from a chunked stream", async () => {
    // @clickhouse/client encodes only JSON itself; binary data goes through exec with raw values.
    const encode = (id: number) => {
      const name = Buffer.from(row(id).name);
      const out = Buffer.alloc(4 + 1 + name.length + 8);
      out.writeUInt32LE(id, 0);
      out.writeUInt8(name.length, 4); // LEB128 length, names here are < 128 bytes
      name.copy(out, 5);
      out.writeBigInt64LE(BigInt(row(id).n), 5 + name.length);
      return out;
    };
    const fromArray = await client.exec({
      query: "INSERT INTO ins (id, name, n) FORMAT RowBinary",
      values: Readable.from([Buffer.concat([30, 31].map(encode))]),
    });
    fromArray.stream.resume();
    const chunks = [32, 33, 34].map(encode);
    const both = Buffer.concat(chunks);
    // Split in the middle of a row: the front must not care where chunks end.
    const fromStream = await client.exec({
      query: "INSERT INTO ins (id, name, n) FORMAT RowBinary",
      values: Readable.from([both.subarray(0, 7), both.subarray(7, 30), both.subarray(30)]),
    });
    fromStream.stream.resume();
    await expectRows(30, 34);
  });

  it("keeps every row when the data holds a blank line (RowBinary 0x0A0A, CSV quoted empty lines)", async () => {
    const ids = [2569, 2570, 2571]; // 2570 is 0x0A0A: a blank line inside binary data
    const encode = (id: number) => {
      const out = Buffer.alloc(4 + 1 + 1 + 8);
      out.writeUInt32LE(id, 0);
      out.writeUInt8(1, 4);
      out.write("\n", 5);
      out.writeBigInt64LE(BigInt(id), 6);
      return out;
    };
    const result = await client.exec({
      query: "INSERT INTO ins (id, name, n) FORMAT RowBinary",
      values: Readable.from([Buffer.concat(ids.map(encode))]),
    });
    result.stream.resume();
    await client.insert({
      table: "ins",
      values: Readable.from(['2600,"two\n\nlines",1\n2601,"x",2\n'], { objectMode: false }),
      format: "CSV",
    });
    const got = await rowsOf<{ id: number; name: string }>(
      "SELECT id, name FROM ins WHERE id IN (2569, 2570, 2571, 2600, 2601) ORDER BY id",
    );
    expect(got).toEqual([
      { id: 2569, name: "\n" },
      { id: 2570, name: "\n" },
      { id: 2571, name: "\n" },
      { id: 2600, name: "two\n\nlines" },
      { id: 2601, name: "x" },
    ]);
  });

  it("rejects data the engine cannot parse with its own code", async () => {
    const error = await clickhouseError(() =>
      client.exec({
        query: "INSERT INTO ins FORMAT JSONEachRow",
        values: Readable.from(["{not json}\n"]),
      }),
    );
    expect(error.code).toBe("26");
    expect(error.message).toContain("Cannot parse JSON string");
  });
});

describe("query", () => {
  it("binds strings with quotes, tabs, backslashes and newlines, and arrays", async () => {
    const tricky = 'it\'s a "test"\twith\\backslash\nand newline, ünïcode';
    const got = await rowsOf<{ s: string; len: number; a: string[]; n: number[] }>(
      "SELECT {s:String} AS s, length({s:String}) AS len, {a:Array(String)} AS a, {n:Array(Int32)} AS n",
      { s: tricky, a: ["x'y", "t\tz", "b\\s"], n: [1, -2, 3] },
    );
    expect(got).toEqual([
      { s: tricky, len: Buffer.byteLength(tricky), a: ["x'y", "t\tz", "b\\s"], n: [1, -2, 3] },
    ]);
  });

  it("takes parameters from a multipart body too (use_multipart_params)", async () => {
    const multipart = createClient({ url, database: db, use_multipart_params: true });
    try {
      const big = "x".repeat(10_000);
      const result = await multipart.query({
        query: "SELECT length({big:String}) AS len, {tag:String} AS tag",
        query_params: { big, tag: "a\tb'c" },
        format: "JSONEachRow",
      });
      expect(await result.json()).toEqual([{ len: 10_000, tag: "a\tb'c" }]);
    } finally {
      await multipart.close();
    }
  });

  it("returns .json() in JSON format with meta and data", async () => {
    const result = await client.query({
      query: "SELECT toString(number) AS n, toString(number) AS s FROM numbers(3)",
      format: "JSON",
    });
    const body = await result.json<{ n: string; s: string }>();
    expect(body.meta).toEqual([
      { name: "n", type: "String" },
      { name: "s", type: "String" },
    ]);
    expect(body.data).toEqual([
      { n: "0", s: "0" },
      { n: "1", s: "1" },
      { n: "2", s: "2" },
    ]);
    expect(body.rows).toBe(3);
  });

  it("streams many rows in chunks", async () => {
    const result = await client.query({
      query: "SELECT number AS n FROM numbers(200000)",
      format: "JSONCompactEachRow",
    });
    let count = 0;
    let sum = 0;
    let batches = 0;
    for await (const rows of result.stream<[string]>()) {
      batches++;
      for (const r of rows) {
        count++;
        sum += Number(r.json()[0]);
      }
    }
    expect(count).toBe(200000);
    expect(sum).toBe((199999 * 200000) / 2);
    expect(batches).toBeGreaterThan(1);
  });
});

describe("settings", () => {
  const maxBlockSize = async (settings?: Record<string, string | number>, session_id?: string) =>
    (
      await (
        await client.query({
          query: "SELECT toString(getSetting('max_block_size')) AS v",
          format: "JSONEachRow",
          ...(settings ? { clickhouse_settings: settings } : {}),
          ...(session_id ? { session_id } : {}),
        })
      ).json<{ v: string }>()
    )[0]?.v;

  it("applies clickhouse_settings to one query and never to the next", async () => {
    const defaultValue = await maxBlockSize();
    expect(await maxBlockSize({ max_block_size: "1234" })).toBe("1234");
    // Enough queries to land on every pooled engine session at least once.
    const after = await Promise.all(Array.from({ length: 12 }, () => maxBlockSize()));
    expect(new Set(after)).toEqual(new Set([defaultValue]));
    expect(defaultValue).not.toBe("1234");
  });

  it("answers an unknown setting with UNKNOWN_SETTING (115)", async () => {
    const error = await clickhouseError(() =>
      client.query({ query: "SELECT 1", clickhouse_settings: { no_such_setting_xyz: 1 } as never }),
    );
    expect(error.code).toBe("115");
    expect(error.type).toBe("UNKNOWN_SETTING");
    expect(
      await client.query({ query: "SELECT 1 AS one", format: "JSONEachRow" }).then((r) => r.json()),
    ).toEqual([{ one: 1 }]);
  });

  it("keeps SET inside a session, and per-query settings off it", async () => {
    const session_id = `${iso.id}_settings`;
    await client.command({ query: "SET max_block_size = 777", session_id });
    expect(await maxBlockSize(undefined, session_id)).toBe("777");
    expect(await maxBlockSize({ max_block_size: 5 }, session_id)).toBe("5");
    expect(await maxBlockSize(undefined, session_id)).toBe("777");
    expect(await maxBlockSize()).not.toBe("777");
  });
});

describe("database option", () => {
  it("resolves unqualified names in the client's database and leaves others in default", async () => {
    expect(await rowsOf("SELECT currentDatabase() AS d")).toEqual([{ d: db }]);
    const plain = createClient({ url });
    try {
      const rows = await (
        await plain.query({ query: "SELECT currentDatabase() AS d", format: "JSONEachRow" })
      ).json();
      expect(rows).toEqual([{ d: "default" }]);
    } finally {
      await plain.close();
    }
  });

  it("answers an unknown database with UNKNOWN_DATABASE (81)", async () => {
    const other = createClient({ url, database: `${db}_missing` });
    try {
      const error = await clickhouseError(() => other.query({ query: "SELECT 1" }));
      expect(error.code).toBe("81");
    } finally {
      await other.close();
    }
  });
});

describe("sessions", () => {
  it("sees a temporary table only within its session", async () => {
    const session_id = `${iso.id}_temp`;
    await client.command({ query: "CREATE TEMPORARY TABLE scratch (x UInt32)", session_id });
    await client.insert({
      table: "scratch",
      values: [{ x: 41 }, { x: 1 }],
      format: "JSONEachRow",
      session_id,
    });
    const rows = await (
      await client.query({
        query: "SELECT toString(sum(x)) AS s FROM scratch",
        format: "JSONEachRow",
        session_id,
      })
    ).json();
    expect(rows).toEqual([{ s: "42" }]);
    const error = await clickhouseError(() =>
      client.query({ query: "SELECT * FROM scratch", session_id: `${iso.id}_other` }),
    );
    expect(error.code).toBe("60");
  });
});

describe("compression", () => {
  it("round-trips with gzip request and response through the client", async () => {
    const gz = createClient({ url, database: db, compression: { request: true, response: true } });
    try {
      await gz.command({
        query: "CREATE TABLE gz (id UInt32, s String) ENGINE = MergeTree ORDER BY id",
      });
      const values = Array.from({ length: 5000 }, (_, id) => ({ id, s: `row ${id} `.repeat(5) }));
      await gz.insert({ table: "gz", values, format: "JSONEachRow" });
      const rows = await (
        await gz.query({ query: "SELECT id, s FROM gz ORDER BY id", format: "JSONEachRow" })
      ).json();
      expect(rows).toEqual(values);
    } finally {
      await gz.close();
    }
  });

  it("reports an error in the middle of a gzip stream", async () => {
    const gz = createClient({ url, compression: { request: true, response: true } });
    try {
      const result = await gz.query({
        query:
          "SELECT number, throwIf(number = 200000, 'boom under gzip') FROM numbers(500000) SETTINGS max_block_size = 1000",
        format: "JSONCompactEachRow",
      });
      const { error, rows } = await streamError(result);
      expect([error.code, rows > 0]).toEqual(["395", true]);
      expect(error.message).toContain("boom under gzip");
    } finally {
      await gz.close();
    }
  });

  it("really compresses: gzip body in, gzip body out", async () => {
    const response = await fetch(`${url}/?enable_http_compression=1&default_format=JSONEachRow`, {
      method: "POST",
      headers: { "Content-Encoding": "gzip", "Accept-Encoding": "gzip" },
      body: gzipSync("SELECT 'squeezed' AS s"),
    });
    expect(response.headers.get("content-encoding")).toBe("gzip");
    // fetch decodes gzip itself; read the raw bytes to prove they were compressed.
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({ s: "squeezed" });
    const raw = await new Promise<Buffer>((resolve, reject) => {
      import("node:http").then(({ request }) => {
        const req = request(
          `${url}/?enable_http_compression=1&query=SELECT%201`,
          { headers: { "Accept-Encoding": "gzip" } },
          (res) => {
            const chunks: Buffer[] = [];
            res
              .on("data", (c: Buffer) => chunks.push(c))
              .on("end", () => resolve(Buffer.concat(chunks)));
          },
        );
        req.on("error", reject).end();
      });
    });
    expect(gunzipSync(raw).toString()).toBe("1\n");
  });
});

describe("errors", () => {
  it("a syntax error is ClickHouse's code 62 with its message", async () => {
    // Not "SELEC 1": the engine quotes the bad token as "(SELEC)", which the client reads as the error type.
    const error = await clickhouseError(() => client.query({ query: "foobar" }));
    expect(error.code).toBe("62");
    expect(error.type).toBe("SYNTAX_ERROR");
    expect(error.message).toMatch(/Syntax error/);
  });

  it("an unknown table is code 60 naming the table", async () => {
    const error = await clickhouseError(() =>
      client.query({ query: "SELECT * FROM no_such_table_here" }),
    );
    expect(error.code).toBe("60");
    expect(error.type).toBe("UNKNOWN_TABLE");
    expect(error.message).toContain("no_such_table_here");
    const viaCommand = await clickhouseError(() =>
      client.command({ query: "DROP TABLE no_such_table_here" }),
    );
    expect(viaCommand.code).toBe("60");
  });

  it("with wait_end_of_query=1 the same failing query is an HTTP error before any row", async () => {
    const error = await clickhouseError(() =>
      client.query({
        query: "SELECT number, throwIf(number = 250000, 'boom at the end') FROM numbers(1000000)",
        format: "JSONEachRow",
        clickhouse_settings: { wait_end_of_query: 1 },
      }),
    );
    expect([error.code, error.type]).toEqual(["395", "FUNCTION_THROW_IF_VALUE_IS_NON_ZERO"]);
  });

  it("an error in the middle of a stream reaches the consumer after the first rows", async () => {
    const result = await client.query({
      query:
        "SELECT number AS n, throwIf(number = 250000, 'boom in the stream') AS t FROM numbers(1000000) SETTINGS max_block_size = 1000",
      format: "JSONEachRow",
    });
    const { error, rows } = await streamError(result);
    expect(error.code).toBe("395");
    expect(error.message).toContain("boom in the stream");
    expect(rows).toBeGreaterThan(0);
    expect(rows).toBeLessThanOrEqual(250000);
  });
});

describe("concurrency", () => {
  it("runs two slow queries at the same time", async () => {
    // Each query sleeps 2 x 0.6 s; one after the other they would take at least 2.4 s.
    const slow = "SELECT sleepEachRow(0.6) FROM numbers(2) SETTINGS max_block_size = 1";
    const started = performance.now();
    const spans = await Promise.all(
      [0, 1].map(async () => {
        const begin = performance.now() - started;
        await (await client.query({ query: slow, format: "JSONEachRow" })).json();
        return { begin, end: performance.now() - started };
      }),
    );
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(1150);
    expect(elapsed).toBeLessThan(2200);
    const [a, b] = spans;
    expect(a && b && a.begin < b.end && b.begin < a.end).toBe(true);
  });

  it("refuses a second query in a busy session with SESSION_IS_LOCKED (373)", async () => {
    const session_id = `${iso.id}_locked`;
    const slow = client.command({ query: "SELECT sleep(1)", session_id });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const error = await clickhouseError(() => client.query({ query: "SELECT 1", session_id }));
    await slow;
    expect(error.code).toBe("373");
  });
});
