// Latency of the balance endpoint under a steady load: GET /v1/me/balance on the real API
// (buildApi, in-process, listening on a free port) driven by autocannon at a fixed overall rate
// (default 2,000 requests/s for 30 s), member tokens spread over N members whose states sit in
// Redis as the consumer writes them (engine openMember/apply, encodeState, HSET s/v). Next to
// it, in the same run, the baseline: a bare HGET of the same hashes through ioredis at the same
// rate and duration. Prints a markdown table with the target (p99 under 20 ms).
//   node test/bench/api.bench.ts
// Env: KAFKA_BROKERS, SCHEMA_REGISTRY_URL, REDIS_URL, CLICKHOUSE_URL (default: the local stack),
// BENCH_SECONDS (default 30), BENCH_RATE (default 2000 requests/s), BENCH_MEMBERS (default
// 10000), BENCH_CONNECTIONS (default 50). Topics, schema subjects and Redis keys are unique per
// run and removed at the end.
//
// autocannon runs in a child process (this same file), so the API's event loop serves requests
// only, as in a deployment; the baseline's paced HGETs run in the main process while the API is
// idle. Both measure each request from its send to its answer.

import { fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { buildApi } from "@creditflow/api";
import { topicNames, valueSubject } from "@creditflow/contracts";
import { type CreditCommand, DAY_MS, encodeState, HOUR_MS } from "@creditflow/engine";
import { connectKafka, ensureTopics } from "@creditflow/producer";
import { Redis } from "ioredis";
import { buildMember, memberToken, usage } from "../../services/api/testing/harness.ts";
import { loadConfig } from "../../services/consumer/testing/harness.ts";

interface LoadJob {
  url: string;
  tokens: string[];
  rate: number;
  seconds: number;
  connections: number;
}

/** What the load process sends back (numbers only, over IPC). */
interface LoadResult {
  total: number;
  ok: number;
  non2xx: number;
  errors: number;
  seconds: number;
  p50: number;
  p99: number;
  max: number;
}

/**
 * The load process: autocannon at a fixed overall rate, one member token per request in turn.
 * autocannon's rate is a per-second budget of each connection; its coordinated-omission
 * correction assumes an interval of ceil(1/rate) = 1 ms and would invent samples, so latencies
 * are recorded as measured (a load generator falling behind shows in the achieved rate).
 */
async function loadProcess(job: LoadJob): Promise<LoadResult> {
  const { default: autocannon } = await import("autocannon");
  let next = 0;
  const r = await autocannon({
    url: job.url,
    connections: job.connections,
    overallRate: job.rate,
    duration: job.seconds,
    ignoreCoordinatedOmission: true,
    requests: [
      {
        method: "GET",
        path: "/v1/me/balance",
        setupRequest: (request) => {
          const token = job.tokens[next++ % job.tokens.length]!;
          request.headers = { ...request.headers, authorization: `Bearer ${token}` };
          return request;
        },
      },
    ],
  });
  return {
    total: r.requests.total,
    ok: r["2xx"],
    non2xx: r.non2xx,
    errors: r.errors,
    seconds: r.duration,
    p50: r.latency.p50,
    p99: r.latency.p99,
    max: r.latency.max,
  };
}

if (process.env.CF_BENCH_ROLE === "load") {
  process.once("message", async (job: LoadJob) => {
    process.send!(await loadProcess(job), () => process.exit(0));
  });
} else {
  await main();
}

async function main(): Promise<void> {
  const brokers = (process.env.KAFKA_BROKERS ?? "127.0.0.1:19092").split(",");
  const registryUrl = process.env.SCHEMA_REGISTRY_URL ?? "http://127.0.0.1:18081/apis/ccompat/v7";
  const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:16379";
  const clickhouseUrl = process.env.CLICKHOUSE_URL ?? "http://127.0.0.1:18123";
  const seconds = Number(process.env.BENCH_SECONDS ?? 30);
  const rate = Number(process.env.BENCH_RATE ?? 2_000);
  const memberCount = Number(process.env.BENCH_MEMBERS ?? 10_000);
  const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
  const TARGET_P99_MS = 20;

  const runId = `bench_api_${randomBytes(4).toString("hex")}`;
  const topics = topicNames(`t_${runId}`);
  const keyPrefix = `bench:${runId}:`;
  const jwtSecret = randomBytes(32).toString("hex");
  const config = loadConfig();
  const conn = connectKafka(brokers, `bench-${runId}`);
  const redis = new Redis(redisUrl);
  const nowMs = Date.now();
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const fmt = (n: number, digits = 0) =>
    n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

  /** A member with some history: signed up 9 days ago, a trial bonus, five tasks over a day. */
  function member(i: number) {
    const userId = `m${i}`;
    const trial: CreditCommand = {
      type: "grant_bonus",
      id: `${userId}-trial`,
      userId,
      atMs: nowMs - 2 * DAY_MS,
      source: "trial",
      amountMicros: 10_000_000,
      effectiveFromMs: nowMs - 2 * DAY_MS,
      expiresAtMs: nowMs + 5 * DAY_MS,
      priority: 0,
      recurrence: null,
    };
    const tasks = Array.from({ length: 5 }, (_, t) =>
      usage(
        userId,
        `${userId}-e${t}`,
        `${userId}-t${t}`,
        t % 2 === 0 ? "chat" : "agent",
        "kimi-k2",
        20_000 + ((i * 7 + t * 13) % 40) * 1_000,
        nowMs - (5 - t) * 5 * HOUR_MS,
      ),
    );
    return buildMember(config, userId, nowMs - 9 * DAY_MS, [trial, ...tasks]).state;
  }

  const hashKey = (userId: string) => `${keyPrefix}{${userId}}:m`;
  const userIds = Array.from({ length: memberCount }, (_, i) => `m${i}`);

  async function seed(): Promise<string[]> {
    const t0 = performance.now();
    for (let i = 0; i < memberCount; i += 1_000) {
      const pipeline = redis.pipeline();
      for (let j = i; j < Math.min(memberCount, i + 1_000); j++) {
        const state = member(j);
        pipeline.hset(hashKey(state.userId), "s", encodeState(state), "v", "1");
      }
      await pipeline.exec();
    }
    const tokens = await Promise.all(
      userIds.map((u) => memberToken(u, { secret: jwtSecret, expiresInSeconds: 3_600 })),
    );
    log(`seeded ${fmt(memberCount)} members and tokens in ${fmt(performance.now() - t0)} ms`);
    return tokens;
  }

  /** The API run: autocannon in a child process (this file) against the listening API. */
  function drive(url: string, tokens: string[]): Promise<LoadResult> {
    const job: LoadJob = { url, tokens, rate, seconds, connections };
    return new Promise((resolve, reject) => {
      const child = fork(fileURLToPath(import.meta.url), [], {
        env: { ...process.env, CF_BENCH_ROLE: "load" },
      });
      child.once("message", (r) => resolve(r as LoadResult));
      child.once("error", reject);
      child.once("exit", (code) => {
        if (code !== 0) reject(new Error(`load process exited with ${code}`));
      });
      child.send(job);
    });
  }

  /** The baseline: HGET of the same hashes at the same rate, paced by the wall clock. */
  async function bareHget(): Promise<{ latenciesMs: number[]; seconds: number; failed: number }> {
    const client = new Redis(redisUrl);
    await client.hget(hashKey(userIds[0]!), "s"); // connect and warm up
    const latenciesMs: number[] = [];
    const pending: Array<Promise<void>> = [];
    let failed = 0;
    const total = Math.round(rate * seconds);
    const t0 = performance.now();
    for (let sent = 0; sent < total; ) {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
      for (; sent < due; sent++) {
        const start = performance.now();
        pending.push(
          client.hget(hashKey(userIds[sent % userIds.length]!), "s").then(
            (v) => {
              if (v === null) failed++;
              latenciesMs.push(performance.now() - start);
            },
            () => {
              failed++;
            },
          ),
        );
      }
      await sleep(1);
    }
    await Promise.all(pending);
    const elapsed = (performance.now() - t0) / 1000;
    client.disconnect();
    return { latenciesMs, seconds: elapsed, failed };
  }

  const pct = (sorted: number[], p: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;

  async function deleteKeys(): Promise<void> {
    let cursor = "0";
    do {
      const [nextCursor, keys] = await redis.scan(cursor, "MATCH", `${keyPrefix}*`, "COUNT", 1000);
      cursor = nextCursor;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== "0");
  }

  await ensureTopics(conn, [topics.usage, topics.commands], 1);
  const tokens = await seed();
  const api = await buildApi({
    redisUrl,
    brokers,
    schemaRegistryUrl: registryUrl,
    clickhouseUrl,
    clickhouseDatabase: `bench_${runId}`,
    topics,
    keyPrefix,
    config,
    jwtSecret,
    serviceTokens: [],
    adminTokens: [],
    // The member rate limit still runs on every request; it is set above what one member asks
    // in the run, so no request is refused (refusals would be counted below).
    limits: {
      memberRequestsPerWindow: Math.max(120, Math.ceil((rate * seconds) / memberCount) * 2),
      rateLimitCallers: Math.max(100_000, memberCount * 2),
    },
    logger: false,
  });
  let apiResult: LoadResult;
  let baseline: Awaited<ReturnType<typeof bareHget>>;
  try {
    const address = await api.app.listen({ port: 0, host: "127.0.0.1" });
    const check = await fetch(`${address}/v1/me/balance`, {
      headers: { authorization: `Bearer ${tokens[0]}` },
    });
    if (check.status !== 200)
      throw new Error(`balance answered ${check.status}: ${await check.text()}`);
    await check.arrayBuffer();
    log(`driving ${address}/v1/me/balance at ${fmt(rate)}/s for ${seconds} s`);
    apiResult = await drive(address, tokens);
    log(`baseline: ioredis HGET at ${fmt(rate)}/s for ${seconds} s`);
    baseline = await bareHget();
  } finally {
    await api.close();
    await deleteKeys();
    const admin = conn.kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topics.usage, topics.commands] }).catch(() => undefined);
    await admin.disconnect();
    for (const topic of [topics.usage, topics.commands]) {
      const subject = `${registryUrl}/subjects/${encodeURIComponent(valueSubject(topic))}`;
      await fetch(subject, { method: "DELETE" }).catch(() => undefined);
      await fetch(`${subject}?permanent=true`, { method: "DELETE" }).catch(() => undefined);
    }
    redis.disconnect();
  }

  const sorted = [...baseline.latenciesMs].sort((a, b) => a - b);
  const apiRate = apiResult.ok / apiResult.seconds;
  const baseRate = baseline.latenciesMs.length / baseline.seconds;
  const verdict = apiResult.p99 < TARGET_P99_MS ? "met" : "missed";
  console.log(
    `\n## Balance API latency (${fmt(rate)} requests/s target for ${seconds} s, ${fmt(memberCount)} members, ` +
      `${connections} connections, node ${process.version})\n`,
  );
  console.log("| case | requests | achieved /s | p50 ms | p99 ms | max ms | errors | target |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---|");
  console.log(
    `| GET /v1/me/balance (fastify, JWT, rate limit, Redis, engine view) | ${fmt(apiResult.total)} | ` +
      `${fmt(apiRate)} | ${fmt(apiResult.p50, 1)} | ${fmt(apiResult.p99, 1)} | ` +
      `${fmt(apiResult.max, 1)} | ${apiResult.non2xx + apiResult.errors} | p99 < ${TARGET_P99_MS} ms: ${verdict} |`,
  );
  console.log(
    `| bare ioredis HGET of the same hash (baseline) | ${fmt(baseline.latenciesMs.length)} | ` +
      `${fmt(baseRate)} | ${fmt(pct(sorted, 50), 1)} | ${fmt(pct(sorted, 99), 1)} | ` +
      `${fmt(sorted.at(-1) ?? Number.NaN, 1)} | ${baseline.failed} | - |`,
  );
  console.log(
    "\nautocannon's overallRate is a per-second budget of each connection: each connection sends " +
      `its ${fmt(rate / connections)} requests back to back from the start of every second, so the API ` +
      `sees bursts of up to ${connections} requests in flight; the baseline spreads its HGETs over ` +
      "the second (every millisecond). Both count each request from its send. 'errors' are non-2xx " +
      "answers and connection errors (API), failed or empty HGETs (baseline).",
  );
  process.exit(0);
}
