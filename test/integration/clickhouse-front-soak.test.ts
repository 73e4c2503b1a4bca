// Goal: the ClickHouse front (services/chdb-server) stays whole under many clients at once:
// 24 clients insert and select for 6 s, a quarter of their requests aborted at random moments
// (while queued, in the engine, mid-stream, by a dropped socket). At the end every engine
// session is free, nobody waits, fresh queries answer at once, and every acknowledged insert
// is in the table whole (an aborted one is whole or absent, never partly there). The front
// runs in this file's process on a data directory of its own, so its /metrics are this
// file's alone.
import type { ClickHouseClient } from "@clickhouse/client";
import { afterAll, expect, it } from "vitest";
import { quietClickHouse as createClient } from "../support/fixture.ts";
import { privateFront } from "../support/private-front.ts";

const CLIENTS = 24;
const SOAK_MS = 6000;
const ROWS_PER_INSERT = 200;
const ABORTED_SHARE = 0.25;

let client: ClickHouseClient;
/**
 * The clients that abort use a client (and socket pool) of their own: an abort that fires
 * just after its request completed destroys the socket, which the pool may already have
 * handed to the next request ("socket hang up" there). Only aborting requests share it.
 */
let impatient: ClickHouseClient;

const front = privateFront("soak", async (url) => {
  client = createClient({ url, max_open_connections: CLIENTS + 8 });
  impatient = createClient({ url, max_open_connections: CLIENTS + 8 });
  await client.command({
    query: "CREATE TABLE soak (batch UInt32, n UInt32) ENGINE = MergeTree ORDER BY (batch, n)",
  });
});

afterAll(async () => {
  await client?.close();
  await impatient?.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const poolState = () => front.poolState();

const droppedRequest = (query: string, afterMs: number) => front.droppedRequest(query, afterMs);

it("24 clients inserting and selecting, a quarter aborted at random: every session free at the end", async () => {
  const acknowledged = new Set<number>();
  let nextBatch = 0;
  let aborted = 0;
  let answered = 0;
  const deadline = performance.now() + SOAK_MS;
  const slowSelect =
    "SELECT number, sleepEachRow(0.01) FROM numbers(60) SETTINGS max_block_size = 5";

  const insert = async (abortAfterMs: number | undefined) => {
    const batch = nextBatch++;
    const values = Array.from({ length: ROWS_PER_INSERT }, (_, n) => ({ batch, n }));
    const controller = new AbortController();
    const timer =
      abortAfterMs === undefined ? undefined : setTimeout(() => controller.abort(), abortAfterMs);
    try {
      await (abortAfterMs === undefined ? client : impatient).insert({
        table: "soak",
        values,
        format: "JSONEachRow",
        abort_signal: controller.signal,
      });
      acknowledged.add(batch);
      answered++;
    } catch (error) {
      if (abortAfterMs === undefined)
        throw new Error(`insert ${batch} failed unaborted`, { cause: error });
      aborted++;
    } finally {
      clearTimeout(timer);
    }
  };

  const select = async (abortAfterMs: number | undefined) => {
    const controller = new AbortController();
    let timer =
      abortAfterMs === undefined ? undefined : setTimeout(() => controller.abort(), abortAfterMs);
    try {
      const result = await (abortAfterMs === undefined ? client : impatient).query({
        query: Math.random() < 0.5 ? slowSelect : "SELECT batch, count() FROM soak GROUP BY batch",
        format: "JSONCompactEachRow",
        abort_signal: controller.signal,
      });
      if (abortAfterMs !== undefined) {
        clearTimeout(timer);
        timer = setTimeout(() => result.close(), Math.random() * abortAfterMs);
      }
      for await (const _rows of result.stream()) {
        // read to the end (or until closed)
      }
      answered++;
    } catch (error) {
      if (abortAfterMs === undefined) throw new Error("select failed unaborted", { cause: error });
      aborted++;
    } finally {
      clearTimeout(timer);
    }
  };

  const worker = async () => {
    while (performance.now() < deadline) {
      const abortAfterMs = Math.random() < ABORTED_SHARE ? Math.random() * 400 : undefined;
      const pick = Math.random();
      if (pick < 0.05 && abortAfterMs !== undefined) {
        await droppedRequest(slowSelect, abortAfterMs);
        aborted++;
      } else if (pick < 0.5) await insert(abortAfterMs);
      else await select(abortAfterMs);
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, worker));
  expect(answered).toBeGreaterThan(100);
  expect(aborted).toBeGreaterThan(20);

  // Every session free, nobody queued (polled: a killed query ends at its next block).
  let state = await poolState();
  const quietBy = performance.now() + 2000;
  while (state.pool_sessions_busy !== 0 && performance.now() < quietBy) {
    await sleep(50);
    state = await poolState();
  }
  expect([state.pool_sessions_busy, state.pool_requests_waiting]).toEqual([0, 0]);

  // Fresh queries answer at once.
  const started = performance.now();
  const answers = await Promise.all(
    [1, 2, 3, 4].map(async (n) =>
      (await client.query({ query: `SELECT ${n} AS n`, format: "JSONEachRow" })).json(),
    ),
  );
  expect(answers).toEqual([[{ n: 1 }], [{ n: 2 }], [{ n: 3 }], [{ n: 4 }]]);
  expect(performance.now() - started).toBeLessThan(500);

  // Acknowledged inserts are whole; aborted ones are whole or absent.
  const batches = await (
    await client.query({
      query: "SELECT batch, toUInt32(count()) AS rows FROM soak GROUP BY batch",
      format: "JSONEachRow",
    })
  ).json<{ batch: number; rows: number }>();
  const present = new Map(batches.map((b) => [b.batch, b.rows]));
  for (const batch of acknowledged) expect(present.get(batch)).toBe(ROWS_PER_INSERT);
  expect(new Set(present.values())).toEqual(new Set([ROWS_PER_INSERT]));
}, 60_000);
