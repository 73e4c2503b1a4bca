// Goal: a client that leaves never jams the ClickHouse front (services/chdb-server). Queries
// aborted before their first byte, in the middle of their stream, by a request timeout, by a
// dropped socket, or while their insert body is still arriving give their engine session back
// at once (the engine's query is killed), and fresh queries then answer within 2 s. A write
// that reached the engine is not killed: it runs to its end, materialized views included. The
// front runs in this file's process on a data directory of its own, so the pool's state read
// from its /metrics is this file's alone.
import { Readable } from "node:stream";
import type { ClickHouseClient } from "@clickhouse/client";
import { afterAll, describe, expect, it } from "vitest";
import { quietClickHouse as createClient } from "../support/fixture.ts";
import { privateFront } from "../support/private-front.ts";

const db = "abandoned";

let url: string;
let client: ClickHouseClient;
const front = privateFront("abandoned", async (frontUrl) => {
  url = frontUrl;
  client = createClient({ url, max_open_connections: 250 });
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${db}` });
  await client.command({
    query: `CREATE TABLE ${db}.slow (id UInt32, s String) ENGINE = MergeTree ORDER BY id`,
  });
});

afterAll(async () => {
  await client?.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const poolState = () => front.poolState();

/** The pool's state once no session is busy (polled for up to 2 s; the last read otherwise). */
async function quietPoolState(): Promise<Record<string, number>> {
  const deadline = performance.now() + 2000;
  for (;;) {
    const state = await poolState();
    if (state.pool_sessions_busy === 0 || performance.now() > deadline) return state;
    await sleep(50);
  }
}

/** Four queries at once, each on a client of its own; the time until the last answered. */
async function fourQueriesMs(): Promise<number> {
  const clients = Array.from({ length: 4 }, () => createClient({ url }));
  const started = performance.now();
  try {
    const answers = await Promise.all(
      clients.map(async (c, i) =>
        (await c.query({ query: `SELECT ${i} + 1 AS n`, format: "JSONEachRow" })).json<{
          n: number;
        }>(),
      ),
    );
    expect(answers).toEqual([[{ n: 1 }], [{ n: 2 }], [{ n: 3 }], [{ n: 4 }]]);
    return performance.now() - started;
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

const droppedRequest = (query: string, afterMs: number) => front.droppedRequest(query, afterMs);

describe("abandoned queries", () => {
  it("requests timing out on the client (curl -m 0.3) do not hold the pool", async () => {
    const impatient = createClient({ url, request_timeout: 300 });
    try {
      const outcomes = await Promise.allSettled(
        Array.from({ length: 6 }, () => impatient.query({ query: "SELECT sleep(1)" })),
      );
      expect(outcomes.map((o) => o.status)).toEqual(Array(6).fill("rejected"));
    } finally {
      await impatient.close();
    }
    expect(await fourQueriesMs()).toBeLessThan(2000);
    expect((await quietPoolState()).pool_sessions_busy).toBe(0);
  });

  it("200 queries of SELECT sleep(1) aborted at random moments, then 4 concurrent queries within 2 s", async () => {
    // Three one-row blocks a second apart: an abort within 2.5 s lands before the first byte
    // (queued, or in the first sleep) or in the middle of the stream.
    const query = "SELECT sleep(1) AS s FROM numbers(3) SETTINGS max_block_size = 1";
    let midStream = 0;
    let beforeFirstByte = 0;
    /** One query aborted `abortAfterMs` after its start, or after its first row when `midStreamOnly`. */
    const abandon = async (abortAfterMs: number, midStreamOnly: boolean) => {
      const controller = new AbortController();
      let timer = midStreamOnly ? undefined : setTimeout(() => controller.abort(), abortAfterMs);
      try {
        const result = await client.query({
          query,
          format: "JSONEachRow",
          abort_signal: controller.signal,
        });
        // Once rows flow the client's abort signal no longer applies: it closes the result.
        timer ??= setTimeout(() => result.close(), abortAfterMs);
        // The stream ends (quietly or with an error) at the abort, before its three rows.
        let rows = 0;
        try {
          for await (const batch of result.stream()) rows += batch.length;
        } catch {
          // aborted: counted below
        }
        if (rows < 3) midStream++;
      } catch {
        beforeFirstByte++;
      } finally {
        clearTimeout(timer);
      }
    };
    // Four queries take every session and are aborted at random moments of their stream; the
    // 196 sent while they run wait for a session and leave at random moments, a quarter of
    // them by dropping the socket.
    const runs = Array.from({ length: 4 }, () => abandon(Math.random() * 1500, true));
    await sleep(100);
    for (let i = 0; i < 196; i++) {
      const abortAfterMs = Math.random() * 2500;
      runs.push(i % 4 === 3 ? droppedRequest(query, abortAfterMs) : abandon(abortAfterMs, false));
    }
    await Promise.all(runs);
    expect([beforeFirstByte > 0, midStream > 0]).toEqual([true, true]);
    expect(await fourQueriesMs()).toBeLessThan(2000);
    const state = await quietPoolState();
    expect([state.pool_sessions_busy, state.pool_requests_waiting]).toEqual([0, 0]);
    expect(state.pool_left_while_waiting_total).toBeGreaterThan(0);
    expect(state.pool_released_after_client_left_total).toBeGreaterThan(0);
  });

  it("an insert aborted while its body still arrives holds nothing; one aborted in the engine runs to its end and holds nothing", async () => {
    const trickle = new Readable({ read() {} });
    trickle.push(`${JSON.stringify({ id: 1, s: "first" })}\n`); // then nothing, never ended
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    await expect(
      client.insert({
        table: `${db}.slow`,
        values: trickle,
        format: "JSONEachRow",
        abort_signal: controller.signal,
      }),
    ).rejects.toThrow();
    // A write is not killed (as on a server): it outlives abandonedQueryHoldMs, its session is
    // replaced meanwhile, and every row lands.
    const inEngine = new AbortController();
    setTimeout(() => inEngine.abort(), 300);
    await expect(
      client.command({
        query: `INSERT INTO ${db}.slow SELECT number, toString(sleepEachRow(0.5)) FROM numbers(6) SETTINGS max_block_size = 1`,
        abort_signal: inEngine.signal,
      }),
    ).rejects.toThrow();
    expect(await fourQueriesMs()).toBeLessThan(2000);
    const state = await quietPoolState();
    expect([state.pool_sessions_busy, state.pool_requests_waiting]).toEqual([0, 0]);
    const deadline = performance.now() + 10_000;
    const stored = async () => {
      const rs = await client.query({
        query: `SELECT count() AS n FROM ${db}.slow`,
        format: "JSONEachRow",
      });
      return Number((await rs.json<{ n: string }>())[0]?.n);
    };
    while ((await stored()) < 6 && performance.now() < deadline) await sleep(100);
    expect(await stored()).toBe(6);
  });

  it("an insert whose client leaves once its rows are stored still feeds its materialized view", async () => {
    // The view sleeps 0.5 s a row, 3 s for the block: the source table's part is committed
    // (and visible) while the view still works on the block. The client leaves right then, as
    // a SIGKILLed writer does; the insert's data had all arrived, so it runs to completion, as
    // on a server (past abandonedQueryHoldMs, its session replaced meanwhile): the view's table
    // gets the rows too, and a writer that skips rows already stored (the history sink) leaves
    // no rollup short. The front answers others meanwhile.
    await client.command({
      query: `CREATE TABLE ${db}.src (id UInt32) ENGINE = MergeTree ORDER BY id`,
    });
    await client.command({
      query: `CREATE TABLE ${db}.rollup (id UInt32, slept UInt8) ENGINE = MergeTree ORDER BY id`,
    });
    await client.command({
      query: `CREATE MATERIALIZED VIEW ${db}.rollup_mv TO ${db}.rollup AS SELECT id, sleepEachRow(0.5) AS slept FROM ${db}.src`,
    });
    const count = async (table: string) => {
      const rs = await client.query({
        query: `SELECT count() AS n FROM ${db}.${table}`,
        format: "JSONEachRow",
      });
      return Number((await rs.json<{ n: string }>())[0]?.n);
    };
    const leaving = new AbortController();
    const insert = client.insert({
      table: `${db}.src`,
      values: [1, 2, 3, 4, 5, 6].map((id) => ({ id })),
      format: "JSONEachRow",
      abort_signal: leaving.signal,
    });
    const settled = insert.then(
      () => "answered",
      () => "left",
    );
    const deadline = performance.now() + 10_000;
    while ((await count("src")) < 6 && performance.now() < deadline) await sleep(20);
    expect(await count("src")).toBe(6);
    leaving.abort();
    // Left before its answer: the view still had rows to sleep through.
    expect(await settled).toBe("left");
    expect(await fourQueriesMs()).toBeLessThan(2000);
    while ((await count("rollup")) < 6 && performance.now() < deadline) await sleep(100);
    expect(await count("rollup")).toBe(6);
    expect((await quietPoolState()).pool_sessions_busy).toBe(0);
  });

  it("a query the kill cannot reach has its session replaced after abandonedQueryHoldMs (2 s)", async () => {
    const before = await quietPoolState();
    // The client's own log_comment hides the query from the kill (it is matched on the
    // session's tag); FORMAT JSON runs whole, so no block boundary stops it either.
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    await expect(
      client.query({
        query: "SELECT sleepEachRow(0.1) AS s FROM numbers(30) SETTINGS max_block_size = 1",
        format: "JSON",
        clickhouse_settings: { log_comment: "unkillable" },
        abort_signal: controller.signal,
      }),
    ).rejects.toThrow("The user aborted a request");
    await sleep(2300);
    const after = await quietPoolState();
    expect(after.pool_sessions_retired_total).toBe((before.pool_sessions_retired_total ?? 0) + 1);
    expect([after.pool_sessions, after.pool_sessions_busy]).toEqual([4, 0]);
    expect(await fourQueriesMs()).toBeLessThan(2000);
  });
});
