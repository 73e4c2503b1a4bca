// Benchmark of the ClickHouse HTTP front: insert throughput (JSONEachRow, RowBinary) and a
// simple aggregate's latency through @clickhouse/client and the front, next to the same work
// done through chdb directly in the same run. Prints a markdown table.
//   node test/bench/clickhouse-front.bench.ts            (starts its own front in-process)
//   CLICKHOUSE_URL=http://127.0.0.1:18123 node test/bench/clickhouse-front.bench.ts
// Env: BENCH_ROWS (default 500000), BENCH_REPEAT (default 3), BENCH_QUERIES (default 30).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { type ClickHouseClient, createClient } from "@clickhouse/client";
import { startChdbServer } from "@creditflow/chdb-server";
import { Session } from "chdb";
import { pino } from "pino";

const rowCount = Number(process.env.BENCH_ROWS ?? 500_000);
const repeat = Number(process.env.BENCH_REPEAT ?? 3);
const queryRuns = Number(process.env.BENCH_QUERIES ?? 30);

const dataDir = mkdtempSync(join(tmpdir(), "cf-chfront-bench-"));
const external = process.env.CLICKHOUSE_URL;
const server = external
  ? undefined
  : await startChdbServer({ dataDir, port: 0, logger: pino({ level: "warn" }) });
const url = external ?? server?.url ?? "";
// One process owns one data directory: with our own front, chdb direct shares its directory.
const direct = new Session(dataDir);
const client: ClickHouseClient = createClient({ url, request_timeout: 600_000 });

const ddl = (table: string) =>
  `CREATE TABLE ${table} (id UInt64, user String, feature LowCardinality(String), tokens Int64) ENGINE = MergeTree ORDER BY id`;
const database = `bench_${process.pid}`;
await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
await direct.queryAsync(`CREATE DATABASE IF NOT EXISTS ${database}`);
for (const table of ["front_json", "front_rb", "direct_json"]) {
  await client.command({ query: `DROP TABLE IF EXISTS ${database}.${table}` });
  await client.command({ query: ddl(`${database}.${table}`) });
}
if (external) await direct.queryAsync(ddl(`${database}.direct_json`));

const features = ["agent", "code", "claw", "chat", "image"];
const rows = Array.from({ length: rowCount }, (_, id) => ({
  id,
  user: `u${id % 5000}`,
  feature: features[id % features.length] ?? "chat",
  tokens: (id * 7919) % 100_000,
}));
const jsonPayload = Buffer.from(`${rows.map((r) => JSON.stringify(r)).join("\n")}\n`);
const rowBinaryPayload = Buffer.concat(
  rows.map((r) => {
    const user = Buffer.from(r.user);
    const feature = Buffer.from(r.feature);
    const out = Buffer.alloc(8 + 1 + user.length + 1 + feature.length + 8);
    let at = out.writeBigUInt64LE(BigInt(r.id), 0);
    at = out.writeUInt8(user.length, at);
    at += user.copy(out, at);
    at = out.writeUInt8(feature.length, at);
    at += feature.copy(out, at);
    out.writeBigInt64LE(BigInt(r.tokens), at);
    return out;
  }),
);

/** Best of `repeat` runs after a warm-up, in rows per second; the table is emptied before each run. */
async function insertRate(
  table: string,
  truncate: () => Promise<unknown>,
  work: () => Promise<unknown>,
) {
  let bestMs = Number.POSITIVE_INFINITY;
  for (let i = 0; i <= repeat; i++) {
    await truncate();
    const start = performance.now();
    await work();
    if (i > 0) bestMs = Math.min(bestMs, performance.now() - start); // run 0 warms up
  }
  const counted = await (
    await client.query({
      query: `SELECT toString(count()) AS c FROM ${database}.${table}`,
      format: "JSONEachRow",
    })
  ).json<{ c: string }>();
  if (!external || table !== "direct_json") {
    if (counted[0]?.c !== String(rowCount))
      throw new Error(`${table}: expected ${rowCount} rows, found ${counted[0]?.c}`);
  }
  return (rowCount / bestMs) * 1000;
}

const frontTruncate = (table: string) => () =>
  client.command({ query: `TRUNCATE TABLE ${database}.${table}` });
const directTruncate = () => direct.queryAsync(`TRUNCATE TABLE ${database}.direct_json`);

const directJson = await insertRate("direct_json", directTruncate, () =>
  direct.insert({ table: `${database}.direct_json`, values: jsonPayload, format: "JSONEachRow" }),
);
/** Rows per second of `payload`, bytes in `format`, sent as is through the front into `table`. */
const frontBytesRate = (table: string, format: string, payload: Buffer) =>
  insertRate(table, frontTruncate(table), async () => {
    const result = await client.exec({
      query: `INSERT INTO ${database}.${table} FORMAT ${format}`,
      values: Readable.from([payload]),
    });
    result.stream.resume();
  });
const frontJson = await frontBytesRate("front_json", "JSONEachRow", jsonPayload);
const frontJsonObjects = await insertRate("front_json", frontTruncate("front_json"), () =>
  client.insert({ table: `${database}.front_json`, values: rows, format: "JSONEachRow" }),
);
const frontRowBinary = await frontBytesRate("front_rb", "RowBinary", rowBinaryPayload);

const aggregate = (table: string) =>
  `SELECT feature, count() AS events, sum(tokens) AS tokens, uniqExact(user) AS users FROM ${database}.${table} GROUP BY feature ORDER BY feature`;

async function medianMs(work: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  await work(); // warm-up
  for (let i = 0; i < queryRuns; i++) {
    const start = performance.now();
    await work();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? Number.NaN;
}

const frontQuery = await medianMs(async () => {
  const out = await (
    await client.query({ query: aggregate("front_json"), format: "JSONEachRow" })
  ).json();
  if (out.length !== features.length) throw new Error("front aggregate: wrong row count");
});
const directQuery = await medianMs(async () => {
  const text = (
    await direct.queryAsync(aggregate("direct_json"), { format: "JSONEachRow" })
  ).text();
  const out = text
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line));
  if (out.length !== features.length) throw new Error("direct aggregate: wrong row count");
});

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const pct = (front: number, base: number) => `${Math.round((front / base) * 100)}%`;
console.log(
  `\nClickHouse front vs chdb direct — ${fmt(rowCount)} rows, best of ${repeat}; query median of ${queryRuns}`,
);
console.log(
  `front: ${external ? url : `in-process ${url}`}; engine ${server?.version ?? "external"}; node ${process.version}\n`,
);
console.log("| work | through the front | chdb direct | front / direct |");
console.log("|---|---:|---:|---:|");
console.log(
  `| insert JSONEachRow, raw bytes (rows/s) | ${fmt(frontJson)} | ${fmt(directJson)} | ${pct(frontJson, directJson)} |`,
);
console.log(
  `| insert JSONEachRow, client encodes objects (rows/s) | ${fmt(frontJsonObjects)} | ${fmt(directJson)} | ${pct(frontJsonObjects, directJson)} |`,
);
console.log(
  `| insert RowBinary (rows/s) | ${fmt(frontRowBinary)} | ${fmt(directJson)} (JSONEachRow) | ${pct(frontRowBinary, directJson)} |`,
);
console.log(
  `| aggregate over ${fmt(rowCount)} rows (ms, median) | ${frontQuery.toFixed(1)} | ${directQuery.toFixed(1)} | ${pct(frontQuery, directQuery)} of the time |`,
);

await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
await client.close();
direct.close();
await server?.close();
rmSync(dataDir, { recursive: true, force: true });
