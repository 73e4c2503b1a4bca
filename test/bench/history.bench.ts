// Benchmark of the history: (a) sink throughput, the real sink (startSink) draining a pre-filled
// ledger topic into its own database until ClickHouse holds every row, next to the baseline in
// the same run: a raw @clickhouse/client insert (JSONEachRow) of the same rows in the sink's
// batch size into a second database with the same schema (the rollup views run for both);
// (b) ledger-to-ClickHouse lag under a steady produce rate, through the same running sink;
// (c) analyst queries (runAnalystQuery) over a history generated server-side. Prints one
// markdown table with the targets (lag p99 < 30 s; each query < 5 s).
//   node test/bench/history.bench.ts
//   BENCH_LEDGER_ROWS=10000000 node test/bench/history.bench.ts      (the 10 million)
// Env: KAFKA_BROKERS, SCHEMA_REGISTRY_URL, CLICKHOUSE_URL (default: the local stack),
// BENCH_SINK_ROWS (default 200000), BENCH_LAG_RATE (default 2000 events/s; the issue asks
// 10000), BENCH_LAG_SECONDS (default 30), BENCH_LEDGER_ROWS (default 1000000),
// BENCH_MEMBERS (default 100000), BENCH_QUERY_RUNS (default 3, the median is kept).
// Topics, schema subjects and databases are unique per run and removed at the end.
import { setTimeout as sleep } from "node:timers/promises";
import { type ClickHouseClient, ClickHouseLogLevel, createClient } from "@clickhouse/client";
import { ledgerRecordFromEntry, valueSubject } from "@creditflow/contracts";
import type { LedgerEntry } from "@creditflow/engine";
import {
  type AnalystQuery,
  ledgerRow,
  migrate,
  type RunningSink,
  runAnalystQuery,
  startSink,
} from "@creditflow/history";
import { AvroCodec, ensureTopics } from "@creditflow/kafka";
import { pino } from "pino";
import { benchRun, benchStack } from "./bench-run.ts";

const { brokers, registryUrl, clickhouseUrl } = benchStack;
const sinkRows = Number(process.env.BENCH_SINK_ROWS ?? 200_000);
const lagRate = Number(process.env.BENCH_LAG_RATE ?? 2_000);
const lagSeconds = Number(process.env.BENCH_LAG_SECONDS ?? 30);
const ledgerRows = Number(process.env.BENCH_LEDGER_ROWS ?? 1_000_000);
const memberCount = Number(process.env.BENCH_MEMBERS ?? 100_000);
const queryRuns = Number(process.env.BENCH_QUERY_RUNS ?? 3);
const PARTITIONS = 6;
/** The sink's default batch (DEFAULT_SINK_LIMITS.maxBatchRows): the baseline inserts as much. */
const BATCH = 5_000;
const TARGET_LAG_P99_S = 30;
const TARGET_QUERY_S = 5;

const { id: runId, topics, config, conn } = benchRun("hist");
const allTopics = [topics.ledger, topics.usage, topics.commands, topics.deadLetters];
const sinkDb = `${runId}_sink`;
const rawDb = `${runId}_raw`;
const queryDb = `${runId}_query`;
const codec = new AvroCodec(registryUrl);
const clientOf = (database: string): ClickHouseClient =>
  createClient({
    url: clickhouseUrl,
    database,
    request_timeout: 900_000,
    log: { level: ClickHouseLogLevel.OFF },
  });

const log = (s: string) => process.stderr.write(`${s}\n`);
const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const began = performance.now();

/** A debit of one task as the consumer writes it to the ledger; processed (produced) at atMs. */
function debit(id: string, i: number, atMs: number): LedgerEntry {
  return {
    id,
    kind: "debit",
    userId: `m${i % memberCount}`,
    grantId: `g${i % memberCount}`,
    cls: i % 3 === 0 ? "bonus" : "subscription",
    amountMicros: -(1_000 + ((i * 7_919) % 500_000)),
    balanceAfterMicros: 5_000_000,
    detailMicros: 0,
    feature: "chat",
    taskId: `t${i}`,
    eventAtMs: atMs,
    processedAtMs: atMs,
    topic: topics.usage,
    partition: i % PARTITIONS,
    offset: String(i),
  };
}

async function count(client: ClickHouseClient, where = "1"): Promise<number> {
  const rs = await client.query({
    query: `SELECT toString(count()) AS c FROM ledger_entries WHERE ${where}`,
    format: "JSONEachRow",
  });
  return Number((await rs.json<{ c: string }>())[0]?.c ?? 0);
}

/** Polls until `where` counts `expected` rows; returns when it did, or throws at the deadline. */
async function waitForRows(
  client: ClickHouseClient,
  expected: number,
  where: string,
  timeoutMs: number,
): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const n = await count(client, where);
    if (n >= expected) return performance.now();
    if (performance.now() > deadline) throw new Error(`${n} of ${expected} rows after timeout`);
    await sleep(100);
  }
}

// ---- (a) sink throughput against a raw insert of the same rows ----------------------------

interface Throughput {
  rowsPerSecond: number;
  seconds: number;
}

async function prefillLedger(): Promise<Array<ReturnType<typeof ledgerRow>>> {
  const producer = conn.kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const t0 = Date.now();
  const rows: Array<ReturnType<typeof ledgerRow>> = [];
  let inflight: Promise<unknown>[] = [];
  for (let i = 0; i < sinkRows; i += BATCH) {
    const messages = [];
    for (let j = i; j < Math.min(sinkRows, i + BATCH); j++) {
      const record = ledgerRecordFromEntry(debit(`e${j}`, j, t0 - 3_600_000 + j), "free");
      // The rows the baseline inserts: what the sink makes of the same records.
      rows.push(
        ledgerRow(record, { partition: j % PARTITIONS, offset: Math.floor(j / PARTITIONS) }),
      );
      messages.push({
        key: record.userId,
        value: codec.encode("ledger", record),
        partition: j % PARTITIONS,
      });
    }
    inflight.push(producer.send({ topic: topics.ledger, acks: -1, messages }));
    if (inflight.length >= 8) {
      await Promise.all(inflight);
      inflight = [];
    }
  }
  await Promise.all(inflight);
  await producer.disconnect();
  log(`pre-filled ${fmt(sinkRows)} ledger records in ${fmt(Date.now() - t0)} ms`);
  return rows;
}

/** The raw insert: the same rows, batches of the sink's size, one after another. */
async function rawInsert(rows: Array<ReturnType<typeof ledgerRow>>): Promise<Throughput> {
  await migrate(clickhouseUrl, rawDb);
  const client = clientOf(rawDb);
  const t0 = performance.now();
  for (let i = 0; i < rows.length; i += BATCH) {
    await client.insert({
      table: "ledger_entries",
      values: rows.slice(i, i + BATCH),
      format: "JSONEachRow",
    });
  }
  const seconds = (performance.now() - t0) / 1000;
  const n = await count(client);
  await client.close();
  if (n !== rows.length) throw new Error(`raw insert: ${n} of ${rows.length} rows stored`);
  return { rowsPerSecond: rows.length / seconds, seconds };
}

/**
 * The sink from its start (migrations, group join, fetch, decode, dedupe lookup, insert,
 * commit) until ClickHouse counts every row; also the time from the first row seen to the last,
 * which leaves the fixed start-up out.
 */
async function sinkDrain(): Promise<{
  sink: RunningSink;
  total: Throughput;
  steady: Throughput;
  startupSeconds: number;
}> {
  const t0 = performance.now();
  const sink = await startSink({
    brokers,
    schemaRegistryUrl: registryUrl,
    clickhouseUrl,
    database: sinkDb,
    topics,
    groupId: `g_${runId}`,
    rateCard: config.rateCard,
    logger: pino({ level: "warn" }),
  });
  const client = clientOf(sinkDb);
  let firstAt = 0;
  let firstCount = 0;
  const deadline = t0 + 900_000;
  for (;;) {
    const n = await count(client);
    const now = performance.now();
    if (n > 0 && firstAt === 0) {
      firstAt = now;
      firstCount = n;
    }
    if (n >= sinkRows) break;
    if (now > deadline) throw new Error(`sink: ${n} of ${sinkRows} rows after 15 min`);
    await sleep(50);
  }
  const doneAt = performance.now();
  await client.close();
  const seconds = (doneAt - t0) / 1000;
  const steadySeconds = (doneAt - firstAt) / 1000;
  return {
    sink,
    total: { rowsPerSecond: sinkRows / seconds, seconds },
    steady: {
      rowsPerSecond: steadySeconds > 0 ? (sinkRows - firstCount) / steadySeconds : Number.NaN,
      seconds: steadySeconds,
    },
    startupSeconds: (firstAt - t0) / 1000,
  };
}

// ---- (b) lag under a steady produce rate --------------------------------------------------

/**
 * Method: records are produced at a steady rate in small batches (every 20 ms, the records due
 * by then); each record's processedAt is its produce time (the moment the consumer would have
 * written it to the ledger). The sink, already running and caught up, writes them as usual;
 * ClickHouse stamps each row's inserted_at (DEFAULT now64(3)) when the sink's insert lands. The
 * lag of a row is inserted_at - processed_at, read per row with quantiles in ClickHouse once
 * every record is stored: Kafka produce, fetch, the sink's batching (up to maxBatchAgeMs),
 * the dedupe lookup and the insert. Same machine, same clock for both stamps.
 */
async function steadyLag(): Promise<{
  produced: number;
  achievedRate: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}> {
  const producer = conn.kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const total = Math.round(lagRate * lagSeconds);
  const sends: Promise<unknown>[] = [];
  const t0 = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.ceil(((performance.now() - t0) / 1000) * lagRate));
    if (due > sent) {
      const atMs = Date.now();
      const messages = [];
      for (; sent < due; sent++) {
        const record = ledgerRecordFromEntry(debit(`lag${sent}`, sent, atMs), "free");
        messages.push({ key: record.userId, value: codec.encode("ledger", record) });
      }
      sends.push(producer.send({ topic: topics.ledger, acks: -1, messages }));
    }
    await sleep(20);
  }
  await Promise.all(sends);
  const produceSeconds = (performance.now() - t0) / 1000;
  await producer.disconnect();
  const client = clientOf(sinkDb);
  await waitForRows(client, total, "startsWith(entry_id, 'lag')", 600_000);
  const rs = await client.query({
    query: `SELECT
              toFloat64(quantileExact(0.5)(ms)) AS p50,
              toFloat64(quantileExact(0.99)(ms)) AS p99,
              toFloat64(max(ms)) AS mx
            FROM (SELECT dateDiff('millisecond', processed_at, inserted_at) AS ms
                  FROM ledger_entries WHERE startsWith(entry_id, 'lag'))`,
    format: "JSONEachRow",
  });
  const q = (await rs.json<{ p50: number; p99: number; mx: number }>())[0]!;
  await client.close();
  return {
    produced: total,
    achievedRate: total / produceSeconds,
    p50Ms: q.p50,
    p99Ms: q.p99,
    maxMs: q.mx,
  };
}

// ---- (c) analyst queries over a generated history -----------------------------------------

const PERIOD_FROM = "2026-10-01 00:00:00.000";
const PERIOD_TO = "2026-11-01 00:00:00.000";
const PERIOD_MS = 30 * 86_400_000;

/**
 * The history, generated in ClickHouse (INSERT … SELECT … FROM numbers(N)) into the raw tables,
 * so the materialized views fill the rollups as the sink's inserts would: ledgerRows ledger
 * entries over memberCount members in October 2026 (three consecutive numbers make one task of one
 * member) (98% debits, 1% bonus grants, 1% bonus
 * expiries; a third of the debits from the member's bonus), one usage event per debit (tasks of
 * three events, five features, three models), and one bonus grant command per member in five
 * campaigns.
 */
async function generateHistory(client: ClickHouseClient): Promise<number> {
  const t0 = performance.now();
  const spread = `fromUnixTimestamp64Milli(toInt64(toUnixTimestamp64Milli(toDateTime64('${PERIOD_FROM}', 3, 'UTC')) + intDiv(number * ${PERIOD_MS}, ${ledgerRows})), 'UTC')`;
  const pick = "intHash32(number) % 100";
  await client.command({
    query: `INSERT INTO ledger_entries
      (entry_id, kind, user_id, grant_id, grant_class, tier_id, amount_micros, balance_after_micros,
       detail_micros, feature, task_id, event_at, processed_at, source_topic, source_partition,
       source_offset, ledger_partition, ledger_offset)
      SELECT
        concat('e', toString(number)),
        multiIf(${pick} = 0, 'grant', ${pick} = 1, 'expire', 'debit') AS k,
        concat('m', toString(intDiv(number, 3) % ${memberCount})),
        if(k != 'debit' OR number % 3 = 0, concat('g', toString(intDiv(number, 3) % ${memberCount})),
           concat('s', toString(intDiv(number, 3) % ${memberCount}))),
        if(k != 'debit' OR number % 3 = 0, 'bonus', 'subscription'),
        arrayElement(['free', 'pro', 'max'], number % 3 + 1),
        multiIf(k = 'grant', 10000000, k = 'expire', -toInt64(intHash32(number) % 5000000),
                -toInt64(1000 + intHash32(number) % 500000)),
        toInt64(intHash32(number + 1) % 50000000),
        0,
        if(k = 'debit', arrayElement(['chat', 'agent', 'code', 'claw', 'image'], number % 5 + 1), NULL),
        if(k = 'debit', concat('t', toString(intDiv(number, 3))), NULL),
        ${spread}, ${spread},
        '${topics.usage}', toInt32(number % ${PARTITIONS}), toInt64(intDiv(number, ${PARTITIONS})),
        toInt32(number % ${PARTITIONS}), toInt64(intDiv(number, ${PARTITIONS}))
      FROM numbers(${ledgerRows})`,
  });
  await client.command({
    query: `INSERT INTO usage_events
      (event_id, user_id, task_id, feature, task_kind, model, input_tokens, output_tokens,
       cached_input_tokens, cost_micros, rate_card_version, occurred_at, service, kafka_partition,
       kafka_offset)
      SELECT
        concat('u', toString(number)),
        concat('m', toString(intDiv(number, 3) % ${memberCount})),
        concat('t', toString(intDiv(number, 3))),
        arrayElement(['chat', 'agent', 'code', 'claw', 'image'], number % 5 + 1),
        if(number % 5 = 1, 'research', NULL),
        arrayElement(['kimi-k2', 'glm-4.6', 'deepseek-v3'], intDiv(number, 5) % 3 + 1),
        1000 + intHash32(number) % 100000,
        200 + intHash32(number + 7) % 20000,
        0,
        toInt64(1000 + intHash32(number) % 500000),
        '${config.rateCard.version}',
        ${spread},
        'bench',
        toInt32(number % ${PARTITIONS}),
        toInt64(intDiv(number, ${PARTITIONS}))
      FROM numbers(${ledgerRows})
      WHERE ${pick} >= 2`,
  });
  await client.command({
    query: `INSERT INTO grant_commands
      (grant_id, user_id, source, campaign, amount_micros, effective_from, expires_at, issued_by, issued_at)
      SELECT
        concat('g', toString(number)),
        concat('m', toString(number)),
        if(number % 5 = 4, 'trial', 'campaign'),
        arrayElement(['spring', 'referral', 'winback', 'launch', ''], number % 5 + 1),
        10000000,
        toDateTime64('${PERIOD_FROM}', 3, 'UTC') + toIntervalSecond(number % 86400),
        toDateTime64('${PERIOD_TO}', 3, 'UTC'),
        'bench',
        toDateTime64('${PERIOD_FROM}', 3, 'UTC') + toIntervalSecond(number % 86400)
      FROM numbers(${memberCount})`,
  });
  return (performance.now() - t0) / 1000;
}

async function timeQuery(
  client: ClickHouseClient,
  name: AnalystQuery,
): Promise<{ medianS: number; rows: number }> {
  const params = { from: PERIOD_FROM, to: PERIOD_TO, limit: 100 };
  const times: number[] = [];
  let rows = 0;
  for (let i = 0; i < queryRuns; i++) {
    const start = performance.now();
    const out = await runAnalystQuery(client, name, params);
    times.push((performance.now() - start) / 1000);
    rows = out.length;
    if (rows === 0) throw new Error(`${name}: no rows over the generated history`);
  }
  times.sort((a, b) => a - b);
  return { medianS: times[Math.floor(times.length / 2)] ?? Number.NaN, rows };
}

// ---- the run ------------------------------------------------------------------------------

const QUERIES: AnalystQuery[] = [
  "top_members",
  "feature_mix",
  "forfeited_bonus_by_campaign",
  "cost_per_task",
];
let sink: RunningSink | undefined;
try {
  await ensureTopics(conn, allTopics, PARTITIONS);
  await codec.register(topics, ["ledger"]);
  const rows = await prefillLedger();
  log(`raw insert of ${fmt(sinkRows)} rows (baseline)`);
  const raw = await rawInsert(rows);
  log(`sink draining ${fmt(sinkRows)} rows`);
  const drained = await sinkDrain();
  sink = drained.sink;
  log(`steady ${fmt(lagRate)} ledger records/s for ${lagSeconds} s through the running sink`);
  const lag = await steadyLag();
  await sink.stop();
  sink = undefined;

  log(`generating ${fmt(ledgerRows)} ledger rows (and usage, grants) in ClickHouse`);
  await migrate(clickhouseUrl, queryDb);
  const qc = clientOf(queryDb);
  const generateSeconds = await generateHistory(qc);
  const storedLedger = await count(qc);
  log(`generated in ${fmt(generateSeconds, 1)} s; timing ${QUERIES.length} analyst queries`);
  const timings: Array<{ name: AnalystQuery; medianS: number; rows: number }> = [];
  for (const name of QUERIES) timings.push({ name, ...(await timeQuery(qc, name)) });
  await qc.close();

  const met = (ok: boolean) => (ok ? "met" : "missed");
  console.log(
    `\n## History (ClickHouse ${clickhouseUrl}, ${PARTITIONS} partitions, node ${process.version})\n`,
  );
  console.log("| measure | value | baseline (same run) | target |");
  console.log("|---|---:|---:|---|");
  console.log(
    `| sink throughput, ${fmt(sinkRows)} pre-filled ledger rows, start to all stored (rows/s) | ` +
      `${fmt(drained.total.rowsPerSecond)} (${fmt(drained.total.seconds, 1)} s) | ` +
      `${fmt(raw.rowsPerSecond)} raw insert (${fmt(raw.seconds, 1)} s) | - |`,
  );
  console.log(
    `| sink throughput, first row to all stored (rows/s; start-up ${fmt(drained.startupSeconds, 1)} s left out) | ` +
      `${fmt(drained.steady.rowsPerSecond)} | ${fmt(raw.rowsPerSecond)} raw insert | - |`,
  );
  console.log(
    `| ledger-to-ClickHouse lag p50 / p99 / max at ${fmt(lag.achievedRate)} records/s for ${lagSeconds} s ` +
      `(${fmt(lag.produced)} records) | ${fmt(lag.p50Ms / 1000, 2)} s / ${fmt(lag.p99Ms / 1000, 2)} s / ` +
      `${fmt(lag.maxMs / 1000, 2)} s | - | p99 < ${TARGET_LAG_P99_S} s: ${met(lag.p99Ms / 1000 < TARGET_LAG_P99_S)} |`,
  );
  for (const t of timings) {
    console.log(
      `| analyst query ${t.name} over ${fmt(storedLedger)} ledger rows (median of ${queryRuns}, ${t.rows} rows out) | ` +
        `${fmt(t.medianS, 2)} s | - | < ${TARGET_QUERY_S} s: ${met(t.medianS < TARGET_QUERY_S)} |`,
    );
  }
  console.log(
    `\nThe raw insert writes the same rows in batches of ${fmt(BATCH)} (the sink's maxBatchRows) ` +
      "into a database with the same tables and views; the sink also fetches, decodes, looks up " +
      "stored ids and commits offsets. Lag: inserted_at (ClickHouse) minus each record's produce " +
      `time. History generated server-side in ${fmt(generateSeconds, 1)} s (ledger, one usage event ` +
      `per debit, ${fmt(memberCount)} members and grants). Total ${fmt((performance.now() - began) / 1000, 1)} s.`,
  );
} finally {
  await sink?.stop().catch(() => undefined);
  const cleanup = clientOf("default");
  for (const db of [sinkDb, rawDb, queryDb]) {
    await cleanup.command({ query: `DROP DATABASE IF EXISTS ${db}` }).catch(() => undefined);
  }
  await cleanup.close();
  const admin = conn.kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: allTopics }).catch(() => undefined);
  await admin.disconnect();
  for (const topic of allTopics) {
    const subject = `${registryUrl}/subjects/${encodeURIComponent(valueSubject(topic))}`;
    await fetch(subject, { method: "DELETE" }).catch(() => undefined);
    await fetch(`${subject}?permanent=true`, { method: "DELETE" }).catch(() => undefined);
  }
}
process.exit(0);
