// Latency of the balance endpoint under a steady load: GET /v1/me/balance on the real API, run as
// deployed (a child process of services/api/src/main.ts, pino at CF_API_LOG_LEVEL or its default
// info, its log written to a temporary file), at a fixed rate spread evenly over each second
// (default 2,000 requests/s for 30 s), member tokens in turn over N members whose states sit in
// Redis as the consumer writes them (engine openMember/apply, the member store's seedMembers). Next
// to it, in the same run and measured the same way, the baseline: a bare ioredis HGET of the same
// states, not decoded (the member store's MemberReader.stateText), at the same rate and duration. Prints a markdown table with the target (p99 under 20 ms).
//   node test/bench/api.bench.ts
// Env: KAFKA_BROKERS, SCHEMA_REGISTRY_URL, REDIS_URL, CLICKHOUSE_URL (default: the local stack),
// BENCH_SECONDS (default 30), BENCH_WARMUP_SECONDS (default 5, not measured), BENCH_RATE (default
// 2000 requests/s), BENCH_MEMBERS (default 10000), BENCH_CONNECTIONS (most keep-alive connections
// to the API, default 50), CF_BENCH_PROFILE=<dir> (a CPU profile of each API process there),
// BENCH_COMPARE=<main.ts>[,<main.ts>...] (other builds of the API driven the same way in the same
// run, one after the other, e.g. the main.ts of a `git worktree` of an older commit, or this one
// after Node options such as `--max-semi-space-size=32`: an A/B on the same machine minutes
// apart). Topics, schema subjects, Redis keys and the log file are unique per run and removed at
// the end.
//
// The load is generated here, in this process, by one pacer shared by every case: every
// millisecond it sends the requests due by then (rate x elapsed time), so 2,000/s arrive as 2 or
// 3 per millisecond, not in bursts. Each request is timed from the time the schedule gave it to
// its whole answer, not from when it was actually sent: when this process falls behind (its own
// CPU, a GC pause, the machine), the requests it sends late count the wait, as a user's would
// (no coordinated omission). The pacer's largest lag behind that schedule, and this process's own
// CPU per request, are printed, so a load generator competing with the API for the cores shows.
// (autocannon, used before, has no evenly paced mode: its overallRate becomes a per-connection
// budget per second that each connection spends back to back from the start of every second, so
// the API saw up to `connections` requests at once and a queue at the top of each second.)

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { valueSubject } from "@creditflow/contracts";
import { DAY_MS, HOUR_MS, type MemberState } from "@creditflow/engine";
import { ensureTopics } from "@creditflow/kafka";
import { deleteKeysUnder, keySpace, MemberReader, seedMembers } from "@creditflow/member-store";
import { Redis } from "ioredis";
import { buildMember, memberToken } from "../../services/api/testing/harness.ts";
import { bonusGrant, taskUsage } from "../support/inputs.ts";
import { freePort, waitFor } from "../support/wait.ts";
import { benchRun, benchStack } from "./bench-run.ts";

const { brokers, registryUrl, redisUrl, clickhouseUrl } = benchStack;
const seconds = Number(process.env.BENCH_SECONDS ?? 30);
const rate = Number(process.env.BENCH_RATE ?? 2_000);
const memberCount = Number(process.env.BENCH_MEMBERS ?? 10_000);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const TARGET_P99_MS = 20;
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 5);
const cache = "cf_api_cache_lookups_total";

const { id: runId, topicPrefix, topics, keyPrefix, config, conn } = benchRun("api");
const jwtSecret = randomBytes(32).toString("hex");
const redis = new Redis(redisUrl);
const nowMs = Date.now();
const log = (s: string) => process.stderr.write(`${s}\n`);
const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");

/** A member with some history: signed up 9 days ago, a trial bonus, five tasks over a day. */
function member(i: number) {
  const userId = `m${i}`;
  const trial = bonusGrant({
    id: `${userId}-trial`,
    userId,
    source: "trial",
    amountMicros: 10_000_000,
    atMs: nowMs - 2 * DAY_MS,
    expiresAtMs: nowMs + 5 * DAY_MS,
  });
  const tasks = taskUsage(userId, 5, (t) => ({
    feature: t % 2 === 0 ? "chat" : "agent",
    inputTokens: 20_000 + ((i * 7 + t * 13) % 40) * 1_000,
    atMs: nowMs - (5 - t) * 5 * HOUR_MS,
  }));
  return buildMember(config, userId, nowMs - 9 * DAY_MS, [trial, ...tasks]).state;
}

const userIds = Array.from({ length: memberCount }, (_, i) => `m${i}`);

async function seed(): Promise<string[]> {
  const t0 = performance.now();
  for (let i = 0; i < memberCount; i += 1_000) {
    const states: MemberState[] = [];
    for (let j = i; j < Math.min(memberCount, i + 1_000); j++) states.push(member(j));
    await seedMembers(redis, keySpace(keyPrefix), states);
  }
  const tokens = await Promise.all(
    userIds.map((u) => memberToken(u, { secret: jwtSecret, expiresInSeconds: 3_600 })),
  );
  log(`seeded ${fmt(memberCount)} members and tokens in ${fmt(performance.now() - t0)} ms`);
  return tokens;
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;

interface Paced {
  /** Latency of each answered request, send to whole answer. */
  latenciesMs: number[];
  /** Requests not answered as expected, by cause (HTTP status, or "error"). */
  failed: Map<string, number>;
  seconds: number;
  /** The pacer's largest lag behind its schedule (a busy sender would show here). */
  maxLagMs: number;
  /** This process's CPU (user + system) over the run, seconds. */
  clientCpuSeconds: number;
  /** This process's event-loop delay over the run (p99, max), ms: its own stalls. */
  clientLoopDelayMs: { p99: number; max: number };
  /** p99 of each whole second of the run, by the schedule, ms. */
  p99BySecondMs: number[];
  loadBefore: string;
  loadAfter: string;
}

/**
 * `rate` x `seconds` calls of `send`, spread evenly: every millisecond, the calls due by then.
 * `send` resolves to null when the answer is as expected, else to the cause of the failure.
 */
async function paced(
  send: (i: number) => Promise<string | null>,
  runSeconds = seconds,
): Promise<Paced> {
  const total = Math.round(rate * runSeconds);
  // Latency of request i at [i] (NaN until answered, and when failed): preallocated, and no
  // promise is kept per request, so this process's own heap and GC stay small.
  const byRequestMs = new Float64Array(total).fill(Number.NaN);
  const failed = new Map<string, number>();
  const fail = (cause: string) => {
    failed.set(cause, (failed.get(cause) ?? 0) + 1);
  };
  let inFlight = 0;
  let allSent = false;
  const { promise: drained, resolve: drain } = Promise.withResolvers<void>();
  const settle = () => {
    inFlight--;
    if (allSent && inFlight === 0) drain();
  };
  const loadBefore = load();
  let maxLagMs = 0;
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let sent = 0; sent < total; ) {
    const now = performance.now();
    const due = Math.min(total, Math.floor(((now - t0) / 1000) * rate) + 1);
    if (sent < due) maxLagMs = Math.max(maxLagMs, now - (t0 + (sent * 1000) / rate));
    for (; sent < due; sent++) {
      const i = sent;
      const scheduled = t0 + (i * 1000) / rate;
      inFlight++;
      send(i).then(
        (cause) => {
          if (cause === null) byRequestMs[i] = performance.now() - scheduled;
          else fail(cause);
          settle();
        },
        () => {
          fail("error");
          settle();
        },
      );
    }
    await sleep(1);
  }
  allSent = true;
  if (inFlight > 0) await drained;
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  loopDelay.disable();
  const latenciesMs = [...byRequestMs].filter((ms) => !Number.isNaN(ms));
  const bySecond: number[][] = Array.from({ length: Math.ceil(runSeconds) }, () => []);
  for (const [i, ms] of byRequestMs.entries()) {
    if (!Number.isNaN(ms)) bySecond[Math.floor(i / rate)]?.push(ms);
  }
  return {
    latenciesMs,
    failed,
    seconds: elapsed,
    maxLagMs,
    clientCpuSeconds: (cpu.user + cpu.system) / 1e6,
    clientLoopDelayMs: { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
    p99BySecondMs: bySecond.map((l) =>
      pct(
        l.sort((a, b) => a - b),
        99,
      ),
    ),
    loadBefore,
    loadAfter: load(),
  };
}

/**
 * The API as deployed: `main` in a child process, its pino log in a file. `main` is a main.ts,
 * optionally after Node options (`--max-semi-space-size=32 services/api/src/main.ts`).
 */
async function startApi(main: string, port: number, logPath: string) {
  const logFd = openSync(logPath, "w");
  const profile = process.env.CF_BENCH_PROFILE;
  const nodeArgs = profile ? ["--cpu-prof", `--cpu-prof-dir=${profile}`] : [];
  const child = spawn(process.execPath, [...nodeArgs, ...main.split(/\s+/)], {
    env: {
      ...process.env,
      KAFKA_BROKERS: brokers.join(","),
      SCHEMA_REGISTRY_URL: registryUrl,
      REDIS_URL: redisUrl,
      CLICKHOUSE_URL: clickhouseUrl,
      CF_CLICKHOUSE_DATABASE: `bench_${runId}`,
      CF_TOPIC_PREFIX: topicPrefix,
      CF_KEY_PREFIX: keyPrefix,
      CF_JWT_SECRET: jwtSecret,
      CF_API_PORT: String(port),
      CF_API_HOST: "127.0.0.1",
    },
    stdio: ["ignore", logFd, logFd],
  });
  closeSync(logFd);
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  await waitFor(
    "the API to listen",
    async () => {
      if (gone) throw new Error(`the API exited: ${readFileSync(logPath, "utf8").slice(-2000)}`);
      return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
    },
    60_000,
  ).catch((error: unknown) => {
    if (gone) throw new Error(`the API exited at start:\n${readFileSync(logPath, "utf8")}`);
    throw error;
  });
  return {
    async stop() {
      if (!gone) child.kill("SIGTERM");
      await exited;
    },
  };
}

/** The API's /metrics text. A scrape also restarts prom-client's event-loop delay histogram. */
async function scrape(base: string): Promise<string> {
  return (await fetch(`${base}/metrics`)).text();
}

/** Sum of one metric's samples in a /metrics text (0 when absent), those with `labels` only. */
function metric(text: string, name: string, labels = ""): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) {
      if (labels === "" || line.includes(labels)) sum += Number(line.slice(line.lastIndexOf(" ")));
    }
  }
  return sum;
}

/** What the API process did during a run, from a scrape before and one after it. */
function apiSide(before: string, after: string) {
  const delta = (name: string, labels = "") =>
    metric(after, name, labels) - metric(before, name, labels);
  const gc = "cf_api_nodejs_gc_duration_seconds";
  return {
    cpuSeconds: delta("cf_api_process_cpu_seconds_total"),
    tokenCache: {
      hit: delta(cache, 'cache="member_token",result="hit"'),
      miss: delta(cache, 'cache="member_token",result="miss"'),
    },
    // Reset by the scrape before the run: the delays of the run alone (10 ms resolution).
    loopDelayMs: {
      p99: 1000 * metric(after, "cf_api_nodejs_eventloop_lag_p99_seconds"),
      max: 1000 * metric(after, "cf_api_nodejs_eventloop_lag_max_seconds"),
    },
    gc: {
      count: delta(`${gc}_count`),
      ms: 1000 * delta(`${gc}_sum`),
      majorMs: 1000 * delta(`${gc}_sum`, 'kind="major"'),
      over10ms: delta(`${gc}_count`) - delta(`${gc}_bucket`, 'le="0.01"'),
    },
  };
}

async function deleteKeys(): Promise<void> {
  await deleteKeysUnder(redis, keyPrefix);
}

const thisMain = fileURLToPath(new URL("../../services/api/src/main.ts", import.meta.url));
const compared = (process.env.BENCH_COMPARE ?? "")
  .split(",")
  .map((m) => m.trim())
  .filter((m) => m !== "");

await ensureTopics(conn, [topics.usage, topics.commands], 1);
const tokens = await seed();
interface Connection {
  socket: Socket;
  /** What has arrived of the answer being read (latin1: one character per byte). */
  received: string;
  answer: { resolve: (status: number) => void; reject: (error: Error) => void } | null;
}

/**
 * The load's HTTP/1.1 client: up to `connections` keep-alive connections to one port, each GET
 * written as one string and its answer read by its Content-Length (fastify sends one with every
 * JSON answer; an answer without one fails the request). node:http's client cost about 40 µs of
 * CPU more per request than this in a microbenchmark, on the same two cores as the API; the load
 * generator should take as little of them as it can. A request waits for a free connection when
 * all are busy, and that wait counts in its latency.
 */
class KeepAliveGets {
  private readonly port: number;
  private readonly idle: Connection[] = [];
  private readonly waiting: Array<(c: Connection) => void> = [];
  private readonly all = new Set<Connection>();

  constructor(port: number) {
    this.port = port;
  }

  /** GET `path` with an Authorization header: the answer's status once it has all arrived. */
  get(path: string, authorization: string): Promise<number> {
    const request = `GET ${path} HTTP/1.1\r\nhost: 127.0.0.1:${this.port}\r\nauthorization: ${authorization}\r\n\r\n`;
    return new Promise((resolve, reject) => {
      const send = (c: Connection) => {
        c.answer = { resolve, reject };
        c.socket.write(request);
      };
      const free = this.idle.pop();
      if (free !== undefined) send(free);
      else if (this.all.size < connections) send(this.open());
      else this.waiting.push(send);
    });
  }

  close(): void {
    for (const c of this.all) c.socket.destroy();
  }

  private open(): Connection {
    const c: Connection = { socket: connect(this.port, "127.0.0.1"), received: "", answer: null };
    this.all.add(c);
    c.socket.setNoDelay(true);
    c.socket.setEncoding("latin1");
    c.socket.on("data", (chunk: string) => this.read(c, chunk));
    const drop = (error: Error) => {
      this.all.delete(c);
      const at = this.idle.indexOf(c);
      if (at >= 0) this.idle.splice(at, 1);
      c.answer?.reject(error);
      c.answer = null;
    };
    c.socket.on("error", drop);
    c.socket.on("close", () => drop(new Error("the API closed the connection")));
    return c;
  }

  private read(c: Connection, chunk: string): void {
    c.received += chunk;
    const headEnd = c.received.indexOf("\r\n\r\n");
    if (headEnd < 0) return;
    const head = c.received.slice(0, headEnd);
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (!head.startsWith("HTTP/1.1 ") || length === null) {
      c.socket.destroy(new Error(`unexpected answer: ${head.slice(0, 200)}`));
      return;
    }
    const end = headEnd + 4 + Number(length[1]);
    if (c.received.length < end) return;
    const status = Number(head.slice(9, 12));
    c.received = c.received.slice(end);
    const answer = c.answer;
    c.answer = null;
    if (/\r\nconnection: *close/i.test(head)) c.socket.destroy();
    else {
      const next = this.waiting.shift();
      if (next !== undefined) next(c);
      else this.idle.push(c);
    }
    answer?.resolve(status);
  }
}

/** GET /v1/me/balance with token i of `list` (in turn): null when 200 with its whole body. */
async function balanceWith(client: KeepAliveGets, list: string[], i: number) {
  const status = await client.get("/v1/me/balance", `Bearer ${list[i % list.length]}`);
  return status === 200 ? null : String(status);
}

interface ApiCase extends ReturnType<typeof apiSide> {
  main: string;
  run: Paced;
  logLines: number;
}

/** One build of the API: started, checked, warmed up, driven with `measured` tokens, stopped. */
async function driveApi(main: string, measured: string[], warmExpiresIn: number): Promise<ApiCase> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const logPath = join(tmpdir(), `${runId}-api-${port}.log`);
  const api = await startApi(main, port, logPath);
  const client = new KeepAliveGets(port);
  try {
    const check = await fetch(`${base}/v1/me/balance`, {
      headers: { authorization: `Bearer ${measured[0]}` },
    });
    const body = (await check.json()) as { userId?: string };
    if (check.status !== 200 || body.userId !== userIds[0]) {
      throw new Error(`balance answered ${check.status}: ${JSON.stringify(body)}`);
    }
    // Warm-up (not measured): the API process has just started, so its code is not yet compiled
    // by V8's optimising tiers and its connections are not open. It reads the same members with
    // other tokens (another exp), so every measured token is still new to the API when measured.
    const warmTokens = await Promise.all(
      userIds.map((u) => memberToken(u, { secret: jwtSecret, expiresInSeconds: warmExpiresIn })),
    );
    log(`${main}: warm-up ${WARMUP_SECONDS} s at ${fmt(rate)}/s with other tokens`);
    await paced((i) => balanceWith(client, warmTokens, i), WARMUP_SECONDS);
    const linesBefore = readFileSync(logPath, "utf8").split("\n").length;
    const before = await scrape(base);
    log(`${main}: driving ${base}/v1/me/balance at ${fmt(rate)}/s for ${seconds} s`);
    const run = await paced((i) => balanceWith(client, measured, i));
    const after = await scrape(base);
    return {
      main,
      run,
      logLines: readFileSync(logPath, "utf8").split("\n").length - linesBefore,
      ...apiSide(before, after),
    };
  } finally {
    client.close();
    await api.stop();
    rmSync(logPath, { force: true });
  }
}

const cases: ApiCase[] = [];
let baseline: Paced;
try {
  // Each build gets tokens it has not seen (another exp per build), as the first one does.
  for (const [n, main] of [thisMain, ...compared].entries()) {
    const measured =
      n === 0
        ? tokens
        : await Promise.all(
            userIds.map((u) => memberToken(u, { secret: jwtSecret, expiresInSeconds: 3_600 - n })),
          );
    cases.push(await driveApi(main, measured, 3_000 - n));
  }
  log(`baseline: ioredis HGET at ${fmt(rate)}/s for ${seconds} s`);
  const client = new Redis(redisUrl);
  // The state as stored, not decoded: what Redis alone costs the API per request.
  const stored = new MemberReader(client, keySpace(keyPrefix));
  await stored.stateText(userIds[0]!); // connect
  baseline = await paced(async (i) =>
    (await stored.stateText(userIds[i % userIds.length]!)) === null ? "empty" : null,
  );
  client.disconnect();
} finally {
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

function row(name: string, r: Paced, target: string): string {
  const sorted = [...r.latenciesMs].sort((a, b) => a - b);
  const failed = [...r.failed].map(([cause, n]) => `${n} ${cause}`).join(", ") || "0";
  const clientCpuUs = (r.clientCpuSeconds * 1e6) / Math.max(1, sorted.length);
  return (
    `| ${name} | ${fmt(sorted.length)} | ${fmt(sorted.length / r.seconds)} | ` +
    `${fmt(pct(sorted, 50), 2)} | ${fmt(pct(sorted, 99), 2)} | ${fmt(sorted.at(-1) ?? Number.NaN, 1)} | ` +
    `${failed} | ${fmt(r.maxLagMs, 1)} | ${fmt(clientCpuUs)} | ${r.loadBefore} / ${r.loadAfter} | ${target} |`
  );
}

const p99Of = (r: Paced) =>
  pct(
    [...r.latenciesMs].sort((a, b) => a - b),
    99,
  );
const verdict = (r: Paced) => (r.failed.size === 0 && p99Of(r) < TARGET_P99_MS ? "met" : "missed");
const ratio = (c: { hit: number; miss: number }) =>
  c.hit + c.miss === 0 ? "n/a" : `${fmt((100 * c.hit) / (c.hit + c.miss), 1)} % hits`;
const nameOf = (c: ApiCase) =>
  c.main === thisMain
    ? "GET /v1/me/balance (main.ts: fastify, JWT, rate limit, Redis, engine view, pino)"
    : `GET /v1/me/balance, compared build ${c.main}`;
console.log(
  `\n## Balance API latency (${fmt(rate)} requests/s spread evenly for ${seconds} s, ` +
    `${fmt(memberCount)} members, up to ${connections} connections, node ${process.version})\n`,
);
console.log(
  "Latency counts from each request's scheduled send time to its whole answer; client µs: the " +
    "bench process's own CPU per request.\n",
);
console.log(
  "| case | answered | achieved /s | p50 ms | p99 ms | max ms | failed | pacer lag max ms | client µs | load avg before / after | target |",
);
console.log("|---|---:|---:|---:|---:|---:|---|---:|---:|---|---|");
for (const c of cases) {
  console.log(row(nameOf(c), c.run, `p99 < ${TARGET_P99_MS} ms: ${verdict(c.run)}`));
}
console.log(row("bare ioredis HGET of the same hash (baseline)", baseline, "-"));
console.log("");
const seconds20 = (r: Paced) =>
  `p99 per second: ${r.p99BySecondMs.filter((p) => p >= TARGET_P99_MS).length} of ` +
  `${r.p99BySecondMs.length} seconds at ${TARGET_P99_MS} ms or more, worst ` +
  `${fmt(Math.max(...r.p99BySecondMs), 1)} ms (second ${r.p99BySecondMs.indexOf(Math.max(...r.p99BySecondMs)) + 1}), ` +
  `first five seconds ${r.p99BySecondMs
    .slice(0, 5)
    .map((p) => fmt(p, 1))
    .join(" / ")} ms`;
const clientLoop = (r: Paced) =>
  `bench process event-loop delay p99 ${fmt(r.clientLoopDelayMs.p99, 1)} ms, max ` +
  `${fmt(r.clientLoopDelayMs.max, 1)} ms`;
for (const c of cases) {
  console.log(
    `- ${c.main === thisMain ? "API" : c.main}: process CPU ` +
      `${fmt((c.cpuSeconds * 1e6) / Math.max(1, c.run.latenciesMs.length))} µs per request ` +
      `(${fmt((100 * c.cpuSeconds) / c.run.seconds)} % of a core); event-loop delay p99 ` +
      `${fmt(c.loopDelayMs.p99, 1)} ms, max ${fmt(c.loopDelayMs.max, 1)} ms; GC ${fmt(c.gc.count)} ` +
      `pauses, ${fmt(c.gc.ms)} ms in all (major ${fmt(c.gc.majorMs)} ms), ${fmt(c.gc.over10ms)} ` +
      `over 10 ms; member token cache ${ratio(c.tokenCache)}; log lines ${fmt(c.logLines)}; ` +
      `${seconds20(c.run)}; ${clientLoop(c.run)}.`,
  );
}
console.log(`- baseline: ${seconds20(baseline)}; ${clientLoop(baseline)}.`);
console.log(
  `Each member is asked ${fmt((rate * seconds) / memberCount, 1)} times per case, in turn.`,
);
process.exit(0);
