// The chaos run: `npm run chaos -- --minutes N --seed S [--redis-cluster]` (./creditflow chaos).
// Starts its own stack (three Kafka brokers, own ports and state folder; with --redis-cluster the
// consumers' Redis is a cluster of its own), two or more consumers and the history sink,
// drives the load generator with grants, duplicates (a share of them late: after hundreds of newer
// events of their member) and late events while the seeded fault schedule breaks things, waits for everything to drain, then checks what was accepted against
// Redis, the ledger topic and ClickHouse. Prints the faults and invariants tables; exits 1 on a
// violation (with the first counterexample), 2 when the run itself could not be carried out.
import { spawn } from "node:child_process";
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { topicNames } from "@creditflow/contracts";
import {
  type CreditCommand,
  MICROS_PER_CREDIT,
  makeConfig,
  parsePlans,
  parseRateCard,
} from "@creditflow/engine";
import { connectKafka } from "@creditflow/kafka";
import { type LoadgenReport, planMembers } from "@creditflow/loadgen";
import { connectRedis } from "@creditflow/member-store";
import { CreditProducer } from "@creditflow/producer";
import { Command, InvalidArgumentError } from "commander";
import { clusterMasters, FaultRunner } from "./faults.ts";
import {
  checkAll,
  type ExpiringGrant,
  type InvariantResult,
  type LedgerCopy,
} from "./invariants.ts";
import {
  HistoryRows,
  KafkaProbe,
  readAccepted,
  readHistory,
  readLedgerTopic,
  readRedisMembers,
  readUsageTopic,
  redisProgress,
} from "./observe.ts";
import {
  clusterFaultLines,
  type FaultRecord,
  faultLabel,
  faultTable,
  firstCounterexample,
  firstFaultError,
  invariantTable,
} from "./report.ts";
import { buildSchedule, describeFault } from "./schedule.ts";
import {
  AppProcess,
  CHAOS_BROKERS,
  ChaosStack,
  type ClientSettings,
  redisTarget,
} from "./stack.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const DAY_MS = 86_400_000;
const CONSUMER_GROUP = "creditflow-consumer";
const SINK_GROUP = "creditflow-history";
const KEY_PREFIX = "cf:";
const DATABASE = "creditflow";
/** A dead consumer's partitions move after this long (the broker's minimum): kills are frequent. */
const CONSUMER_LIMITS = { sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500 };
/** How long reading one topic to its end may take (3 million records on a busy machine). */
const READ_MS = 1_800_000;
/** A drain whose backlog did not shrink for this long is stuck (whatever the total timeout). */
const DRAIN_STALL_MS = 180_000;
/** The load's duplicates: 1% of the events, a quarter of them late. */
const DUPLICATES = 0.01;
const LATE_DUPLICATES = 0.25;
/** A late duplicate comes after at least this many newer events of its member. */
const LATE_DUPLICATE_DISTANCE = 300;

const positive = (what: string) => (raw: string) => {
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${what}: a number > 0`);
  return n;
};
const whole = (what: string, min: number) => (raw: string) => {
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min)
    throw new InvalidArgumentError(`${what}: an integer >= ${min}`);
  return n;
};

const program = new Command("chaos")
  .description(
    "Chaos run: own 3-broker stack, consumers and sink under seeded faults, load with duplicates (a quarter after 300+ newer events of their member) and late events, then the exactly-once checker",
  )
  .option("--minutes <n>", "length of the load", positive("--minutes"), 2)
  .option("--seed <n>", "seed of the load and of the fault schedule", whole("--seed", 0), 1)
  .option("--rate <events/s>", "usage events per second", positive("--rate"), 5_000)
  .option("--users <n>", "members taking part", whole("--users", 1), 10_000)
  .option("--consumers <n>", "consumer processes in the group", whole("--consumers", 2), 2)
  .option(
    "--expiring-grants <n>",
    "bonus grants that expire during the run",
    whole("--expiring-grants", 0),
    300,
  )
  .option(
    "--drain-timeout <s>",
    "how long the system may take to drain after the load",
    positive("--drain-timeout"),
  )
  .option("--state <dir>", "state folder of the chaos stack (default $CF_STATE/chaos)")
  .option(
    "--redis-cluster",
    "the consumers' Redis is a cluster of its own (3 masters, 3 replicas); adds master kills and a reshard",
    false,
  )
  .option("--keep", "leave the chaos stack running at the end", false)
  .option("--reuse-stack", "use a running chaos stack as it is instead of a fresh one", false);

interface Options {
  minutes: number;
  seed: number;
  rate: number;
  users: number;
  consumers: number;
  expiringGrants: number;
  drainTimeout?: number;
  state?: string;
  redisCluster: boolean;
  keep: boolean;
  reuseStack: boolean;
}

const o = program.parse().opts<Options>();
const state = resolve(o.state ?? join(process.env.CF_STATE ?? join(root, ".state"), "chaos"));
const runDir = join(
  state,
  "runs",
  `${new Date().toISOString().replace(/[:.]/g, "-")}-seed${o.seed}`,
);
mkdirSync(runDir, { recursive: true });
const harnessLog = join(runDir, "chaos.log");
const wallStart = Date.now();
const since = () => ((Date.now() - wallStart) / 1000).toFixed(1);
function say(line: string): void {
  const text = `[chaos ${since()}s] ${line}`;
  console.log(text);
  appendFileSync(harnessLog, `${text}\n`);
}
const stackLog = join(runDir, "stack.log");
const stack = new ChaosStack(root, state, (text) => appendFileSync(stackLog, text), o.redisCluster);

const rateCardPath = join(root, "deploy/config/rate-card.json");
const plansPath = join(root, "deploy/config/plans.json");
const rateCard = parseRateCard(JSON.parse(readFileSync(rateCardPath, "utf8")), rateCardPath);
const config = makeConfig(
  rateCard,
  parsePlans(JSON.parse(readFileSync(plansPath, "utf8")), plansPath),
);
const topics = topicNames("creditflow");

const children: AppProcess[] = [];
let loadgenPid: number | null = null;
let interrupted = false;
/** The stack start in progress: a stop waits for it, or it would start services after the stop. */
let starting: Promise<unknown> = Promise.resolve();

async function tearDown(): Promise<void> {
  await starting.catch(() => undefined);
  if (loadgenPid !== null) {
    try {
      process.kill(loadgenPid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  await Promise.all(children.map((c) => c.stop(20_000)));
  if (o.keep) {
    say(
      `--keep: the chaos stack stays up (CF_STATE=${state}); stop it with the same env and deploy/local/down`,
    );
    return;
  }
  say("stopping the chaos stack");
  // The next run starts from empty data: the brokers need no controlled shutdown.
  for (let n = 1; n <= CHAOS_BROKERS; n++) {
    await stack.service("kafka", "stop-broker", String(n), "kill").catch(() => undefined);
  }
  await stack.down().catch((e: unknown) => say(`stack down: ${(e as Error).message}`));
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    say(`${signal}: stopping`);
    void tearDown().finally(() => process.exit(130));
  });
}

async function freshStack(): Promise<void> {
  if (o.reuseStack && (await stack.running())) {
    say("reusing the running chaos stack (--reuse-stack): data from earlier runs stays");
    return;
  }
  for (let n = 1; n <= CHAOS_BROKERS; n++) {
    await stack.service("kafka", "stop-broker", String(n), "kill").catch(() => undefined);
  }
  await stack.down();
  // A fresh run: no topic, member or row of an earlier run.
  rmSync(join(state, "data"), { recursive: true, force: true });
  const t0 = Date.now();
  starting = stack.up();
  await starting;
  say(`chaos stack up in ${((Date.now() - t0) / 1000).toFixed(0)} s (state ${state})`);
}

function runNode(args: string[], env: NodeJS.ProcessEnv, logPath: string): Promise<number> {
  return new Promise((resolveExit) => {
    const child = spawn(process.execPath, args, {
      cwd: root,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const take = (b: Buffer) => appendFileSync(logPath, b);
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("close", (code) => resolveExit(code ?? 1));
  });
}

async function checkReplication(clients: ClientSettings): Promise<string> {
  const admin = connectKafka(clients.KAFKA_BROKERS.split(","), "chaos-admin").kafka.admin();
  await admin.connect();
  try {
    const meta = await admin.fetchTopicMetadata({
      topics: [topics.usage, topics.commands, topics.ledger],
    });
    const rf = new Set(meta.topics.flatMap((t) => t.partitions.map((p) => p.replicas.length)));
    const configs = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [topics.usage, topics.commands, topics.ledger].map((name) => ({
        type: 2, // TOPIC
        name,
        configNames: ["min.insync.replicas"],
      })),
    });
    const isr = new Set(configs.resources.map((r) => r.configEntries[0]?.configValue));
    if (rf.size !== 1 || !rf.has(CHAOS_BROKERS) || isr.size !== 1 || !isr.has("2")) {
      throw new Error(
        `topics have replication factors ${[...rf]} and min.insync.replicas ${[...isr]}, expected 3 and 2`,
      );
    }
    return `replication factor ${CHAOS_BROKERS}, min.insync.replicas 2, ${meta.topics[0]!.partitions.length} partitions`;
  } finally {
    await admin.disconnect();
  }
}

/** Bonus grants that expire (after the lateness) while the load runs: forfeits to check. */
function expiringGrantCommands(
  runId: string,
  startMs: number,
): { commands: CreditCommand[]; grants: ExpiringGrant[] } {
  const members = planMembers({ users: o.users, seed: o.seed, startMs, runId });
  const lateness = config.plans.allowedLatenessMs;
  const durationMs = o.minutes * 60_000;
  const count = Math.min(o.expiringGrants, members.length);
  const commands: CreditCommand[] = [];
  const grants: ExpiringGrant[] = [];
  for (let i = 0; i < count; i++) {
    const m = members[Math.floor((i * members.length) / count)]!;
    // Forfeit due between 15% and 60% of the load: drained and swept long before the check.
    const expiresAtMs = Math.round(
      startMs - lateness + durationMs * (0.15 + (0.45 * i) / Math.max(1, count)),
    );
    const amountMicros = (1 + (i % 5)) * MICROS_PER_CREDIT;
    const id = `${m.userId}-flash`;
    commands.push({
      type: "grant_bonus",
      id,
      userId: m.userId,
      atMs: startMs,
      source: "promotion",
      amountMicros,
      effectiveFromMs: startMs - DAY_MS,
      expiresAtMs,
      priority: 0,
      recurrence: null,
    });
    grants.push({ userId: m.userId, grantId: id, amountMicros, expiresAtMs });
  }
  return { commands, grants };
}

async function waitDrained(clients: ClientSettings, timeoutMs: number): Promise<number> {
  const kafka = new KafkaProbe(connectKafka(clients.KAFKA_BROKERS.split(","), "chaos-drain"));
  const redis = connectRedis(redisTarget(clients), { maxRetriesPerRequest: 3 });
  const t0 = Date.now();
  let lastReport = 0;
  let clean = 0;
  let least = Number.POSITIVE_INFINITY;
  let most = -1;
  let movedAt = Date.now();
  const history = new HistoryRows(clients.CLICKHOUSE_URL, DATABASE);
  try {
    for (;;) {
      const consumerLag = await kafka.groupLag(CONSUMER_GROUP, [topics.usage, topics.commands]);
      const sinkLag = await kafka.groupLag(SINK_GROUP, [
        topics.ledger,
        topics.usage,
        topics.commands,
        topics.deadLetters,
      ]);
      const progress = await redisProgress(redis, KEY_PREFIX, Date.now(), 5_000);
      const status = `consumer lag ${consumerLag}, sink lag ${sinkLag}, outbox writes ${progress.outboxWrites}, members past their deadline ${progress.dueMembers}`;
      const done =
        consumerLag === 0 &&
        sinkLag === 0 &&
        progress.outboxWrites === 0 &&
        progress.dueMembers === 0;
      // Twice in a row: a sweep or a relay between two reads would show in the second.
      clean = done ? clean + 1 : 0;
      if (clean >= 2) {
        say(`drained in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${status}`);
        return Date.now() - t0;
      }
      const left = consumerLag + sinkLag + progress.outboxWrites + progress.dueMembers;
      // A sink storing rows whose commits are refused moves too (see FAULT_LIMITS.sinkStallMs).
      const rows = sinkLag > 0 ? ((await history.count()) ?? -1) : -1;
      if (left < least || (rows > most && most >= 0)) movedAt = Date.now();
      least = Math.min(least, left);
      most = Math.max(most, rows);
      if (Date.now() - t0 > timeoutMs || Date.now() - movedAt > DRAIN_STALL_MS) {
        throw new Error(
          `not drained after ${((Date.now() - t0) / 1000).toFixed(0)} s (last progress ${((Date.now() - movedAt) / 1000).toFixed(0)} s ago): ${status}`,
        );
      }
      if (Date.now() - lastReport > 15_000) {
        say(`draining: ${status}`);
        lastReport = Date.now();
      }
      await sleep(1_000);
    }
  } finally {
    await kafka.close();
    await redis.quit();
    await history.close();
  }
}

async function main(): Promise<number> {
  const schedule = buildSchedule({
    minutes: o.minutes,
    seed: o.seed,
    consumers: o.consumers,
    brokers: CHAOS_BROKERS,
    redisCluster: o.redisCluster,
  });
  say(
    `chaos run: ${o.minutes} min at ${o.rate} events/s, ${o.users} users, seed ${o.seed}, ${o.consumers} consumers${o.redisCluster ? ", Redis Cluster" : ""}, ${schedule.length} faults; logs in ${runDir}`,
  );
  writeFileSync(
    join(runDir, "schedule.txt"),
    schedule.map((f) => `${(f.atMs / 1000).toFixed(1)}s ${describeFault(f)}`).join("\n"),
  );

  await freshStack();
  const clients = await stack.clients();
  const appEnv: NodeJS.ProcessEnv = {
    ...stack.env,
    ...clients,
    KAFKAJS_NO_PARTITIONER_WARNING: "1",
    CF_TOPIC_PREFIX: "creditflow",
    CF_KEY_PREFIX: KEY_PREFIX,
    CF_CLICKHOUSE_DATABASE: DATABASE,
  };
  const initCode = await runNode(
    ["services/cli/src/main.ts", "init"],
    appEnv,
    join(runDir, "init.log"),
  );
  if (initCode !== 0) throw new Error(`creditflow init failed; read ${join(runDir, "init.log")}`);
  say(
    `topics created: ${await checkReplication(clients)}; schemas registered; ClickHouse migrated`,
  );
  if (clients.REDIS_CLUSTER_NODES !== undefined) {
    const masters = await clusterMasters(clients.REDIS_CLUSTER_NODES);
    say(
      `Redis Cluster ${clients.REDIS_CLUSTER_NODES}: masters ${masters.map((m) => `${m.port} (${m.slots.map(([a, b]) => `${a}-${b}`).join(",")})`).join(", ")}; the consumers, the rebuild and the checks use it`,
    );
  }

  let loadStartMs = Date.now();
  const clock = () => Date.now() - loadStartMs;
  const consumers = Array.from(
    { length: o.consumers },
    (_, i) =>
      new AppProcess({
        name: `consumer-${i}`,
        root,
        entry: "services/consumer/src/main.ts",
        env: {
          ...appEnv,
          CF_CONSUMER_GROUP: CONSUMER_GROUP,
          CF_CONSUMER_LIMITS: JSON.stringify(CONSUMER_LIMITS),
        },
        logPath: join(state, "logs", `chaos-consumer-${i}.log`),
        clock,
      }),
  );
  const sink = new AppProcess({
    name: "sink",
    root,
    entry: "services/history/src/main.ts",
    env: { ...appEnv, CF_SINK_GROUP: SINK_GROUP },
    logPath: join(state, "logs", "chaos-sink.log"),
    clock,
  });
  children.push(...consumers, sink);
  for (const c of children) {
    writeFileSync(c.logPath, "");
    c.start();
  }
  await Promise.all([
    ...consumers.map((c) => c.waitForLog('"msg":"joined group"', 0, 120_000)),
    sink.waitForLog("history sink running", 0, 120_000),
  ]);
  say(
    `${o.consumers} consumers joined group ${CONSUMER_GROUP}; history sink running (logs in ${join(state, "logs")})`,
  );

  // The run's ids and clock origin, shared with the generator so the harness knows its members.
  const startMs = Date.now();
  const runId = `chaos${o.seed}-${startMs.toString(36)}`;
  const expiring = expiringGrantCommands(runId, startMs);
  if (expiring.commands.length > 0) {
    const producer = await CreditProducer.create({
      brokers: clients.KAFKA_BROKERS.split(","),
      schemaRegistryUrl: clients.SCHEMA_REGISTRY_URL,
      service: "chaos",
      rateCard,
      topics,
    });
    try {
      await Promise.all(
        expiring.commands.map((c) => producer.sendCommand(c, "chaos", "chaos-flash")),
      );
    } finally {
      await producer.close();
    }
    say(`sent ${expiring.commands.length} bonus grants that expire during the run`);
  }

  const acceptedPath = join(runDir, "accepted.jsonl");
  const loadgenOut = join(runDir, "loadgen.json");
  const loadgenLog = join(runDir, "loadgen.log");
  const durationS = Math.round(o.minutes * 60);
  loadStartMs = Date.now();
  const loadgen = spawn(
    process.execPath,
    [
      "services/loadgen/src/main.ts",
      ...["--users", String(o.users), "--rate", String(o.rate), "--duration", String(durationS)],
      ...["--seed", String(o.seed), "--duplicates", String(DUPLICATES), "--late", "0.02"],
      ...["--late-duplicates", String(LATE_DUPLICATES), "--with-grants"],
      ...["--late-duplicate-distance", String(LATE_DUPLICATE_DISTANCE)],
      ...["--record", acceptedPath, "--run-id", runId, "--start-ms", String(startMs), "--json"],
    ],
    { cwd: root, env: appEnv, stdio: ["ignore", "pipe", "pipe"] },
  );
  loadgenPid = loadgen.pid ?? null;
  let loadgenStdout = "";
  loadgen.stdout.on("data", (b: Buffer) => {
    loadgenStdout += b.toString();
  });
  loadgen.stderr.on("data", (b: Buffer) => appendFileSync(loadgenLog, b));
  const loadgenExit = new Promise<number>((r) => loadgen.on("close", (code) => r(code ?? 1)));
  say(`load started: ${o.rate} events/s for ${durationS} s (run ${runId}); faults from now on`);

  const kafka = new KafkaProbe(connectKafka(clients.KAFKA_BROKERS.split(","), "chaos-faults"));
  const runner = new FaultRunner({
    root,
    stack,
    clients,
    consumers,
    sink,
    kafka,
    topics,
    consumerGroup: CONSUMER_GROUP,
    sinkGroup: SINK_GROUP,
    keyPrefix: KEY_PREFIX,
    database: DATABASE,
    clock,
    log: say,
    rebuildLogPath: join(runDir, "rebuild.log"),
  });
  const [outcome, loadgenCode] = await Promise.all([
    runner.run(schedule).then((outcome) => {
      // Cut short (a failed rebuild): the consumers stay down, so the load stops too.
      if (outcome.aborted !== null && loadgen.exitCode === null) loadgen.kill("SIGTERM");
      return outcome;
    }),
    loadgenExit,
  ]);
  await kafka.close();
  loadgenPid = null;
  writeFileSync(loadgenOut, loadgenStdout);
  if (outcome.aborted !== null) {
    const text = [
      "",
      `chaos run: seed ${o.seed}, ${o.minutes} min at ${o.rate} events/s, ${o.users} users, ${o.consumers} consumers: STOPPED at ${(clock() / 1000).toFixed(1)} s`,
      "",
      ...faultsAndInvariants(outcome.records, outcome.rebuild === null ? [] : [outcome.rebuild]),
      "",
    ].join("\n");
    console.log(text);
    writeFileSync(join(runDir, "report.md"), text);
    console.log(`RUN STOPPED: ${outcome.aborted}`);
    // 1: the rebuild's own check failed (an invariant); 2: the procedure failed around it.
    return (outcome.rebuild?.violations ?? 0) > 0 ? 1 : 2;
  }
  const loadEndedMs = clock();
  // What `creditflow loadgen --json` prints.
  let report: LoadgenReport | null = null;
  try {
    report = JSON.parse(loadgenStdout);
  } catch {
    throw new Error(
      `the load generator exited ${loadgenCode} without a report; read ${loadgenLog}`,
    );
  }
  const lateDuplicatesLine = `${report!.lateDuplicates} late duplicates (${report!.lateDuplicatesAtDistance} after >= ${report!.lateDuplicateDistance} newer events of their member, at most ${report!.lateDuplicateMaxDistance})`;
  say(
    `load done at ${(loadEndedMs / 1000).toFixed(1)} s: ${report!.events} events accepted, ${report!.duplicates} duplicate sends, ${lateDuplicatesLine}, ${report!.late} late, ${report!.commands} commands, ${report!.failed} sends unacknowledged, achieved ${report!.achievedRate}/s`,
  );

  const drainTimeoutMs = (o.drainTimeout ?? Math.max(300, o.minutes * 360)) * 1000;
  const drainMs = await waitDrained(clients, drainTimeoutMs);
  await Promise.all(children.map((c) => c.stop(30_000)));
  say("consumers and sink stopped (SIGTERM); reading topics, Redis and ClickHouse");

  const t0 = Date.now();
  const conn = connectKafka(clients.KAFKA_BROKERS.split(","), "chaos-check");
  const { accepted, lateDuplicates } = await readAccepted(acceptedPath);
  const usage = await readUsageTopic(conn, clients.SCHEMA_REGISTRY_URL, topics, rateCard, READ_MS);
  const ledger = await readLedgerTopic(conn, clients.SCHEMA_REGISTRY_URL, topics, READ_MS);
  const redis = await readRedisMembers(redisTarget(clients), KEY_PREFIX);
  const history = await readHistory(clients.CLICKHOUSE_URL, DATABASE);
  const probe = new KafkaProbe(conn);
  const deadLetters = await probe.topicSize(topics.deadLetters);
  await probe.close();
  say(
    `read ${accepted.size} accepted events and ${lateDuplicates.length} late duplicates, ${usage.records} usage records (${usage.events.size} distinct), ${ledger.length} ledger records, ${redis.size} members, ${history.ledger.length} + ${history.usageIds.length} ClickHouse rows in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );

  const results = checkAll({
    accepted,
    lateDuplicates,
    usageTopic: usage.events,
    ledgerTopic: ledger,
    redis,
    historyLedger: history.ledger,
    historyUsageIds: history.usageIds,
    expiringGrants: expiring.grants,
    deadLetters,
    rebuild: outcome.rebuild,
    checkedAtMs: Date.now(),
    latenessMs: config.plans.allowedLatenessMs,
    sweepSlackMs: 30_000,
  });
  const exits = children
    .map(
      (c) =>
        `${c.name}: ${c.starts} starts, ${c.unexpectedExits.length} exits not asked for${c.unexpectedExits.length ? ` (${c.unexpectedExits.map((e) => `${(e.atMs / 1000).toFixed(1)}s ${e.signal ?? `code ${e.code}`}`).join(", ")})` : ""}`,
    )
    .join("\n");
  const wallS = (Date.now() - wallStart) / 1000;
  const text = [
    "",
    `chaos run: seed ${o.seed}, ${o.minutes} min at ${o.rate} events/s (achieved ${report!.achievedRate}/s), ${o.users} users, ${o.consumers} consumers, ${CHAOS_BROKERS} Kafka brokers (RF 3, min ISR 2)${o.redisCluster ? ", Redis Cluster of 3 masters and 3 replicas (minReplicaAcks 1)" : ""}`,
    `accepted ${report!.events} events (+${report!.duplicates} duplicate sends, ${report!.late} late), ${report!.commands + expiring.commands.length} commands; drained in ${(drainMs / 1000).toFixed(1)} s after the load; wall time ${wallS.toFixed(0)} s`,
    `of the duplicate sends: ${lateDuplicatesLine}`,
    "",
    ...faultsAndInvariants(outcome.records, results),
    "",
    "processes:",
    exits,
    "",
  ].join("\n");
  console.log(text);
  writeFileSync(join(runDir, "report.md"), text);
  const faultError = firstFaultError(outcome.records);
  const counterexample = firstCounterexample(results);
  if (counterexample !== null) {
    console.log(`FIRST COUNTEREXAMPLE: ${counterexample}`);
    const evidence = evidenceOf(results, ledger);
    if (evidence !== "") {
      writeFileSync(join(runDir, "evidence.txt"), evidence);
      console.log(`the named members' ledger records: ${join(runDir, "evidence.txt")}`);
    }
    return 1;
  }
  if (faultError !== null) {
    console.log(`FAULT NOT CARRIED OUT: ${faultError}`);
    return 2;
  }
  const missing = [...new Set(schedule.map((f) => f.kind))].filter(
    (k) => !outcome.records.some((r) => r.kind === k),
  );
  if (missing.length > 0) {
    console.log(`FAULTS NOT INJECTED: ${missing.map(faultLabel).join(", ")}`);
    return 2;
  }
  console.log("every invariant held");
  return 0;
}

/**
 * The report's faults injected (on a cluster run, each Redis fault also on a line of its own:
 * when, how long, what it did) and its invariants.
 */
function faultsAndInvariants(records: FaultRecord[], results: InvariantResult[]): string[] {
  return [
    "faults injected:",
    faultTable(records, o.redisCluster),
    ...(o.redisCluster ? ["", "Redis Cluster faults:", clusterFaultLines(records)] : []),
    "",
    "invariants:",
    invariantTable(results),
  ];
}

/**
 * The ledger records, in topic order, of each member a violated invariant names in its first
 * counterexample: the next run empties the stack's data, so a failure keeps its evidence here.
 */
function evidenceOf(results: InvariantResult[], ledger: LedgerCopy[]): string {
  const members = new Set<string>();
  for (const r of results) {
    const named = r.violations > 0 ? /member (\S+?):/.exec(r.first ?? "") : null;
    if (named !== null) members.add(named[1]!);
  }
  const lines: string[] = [];
  for (const userId of members) {
    lines.push(`member ${userId}, ledger topic order (first copy of an id checked):`);
    ledger.forEach(({ entry: e, digest }, i) => {
      if (e.userId !== userId) return;
      const at = e.processedAtMs === undefined ? "?" : new Date(e.processedAtMs).toISOString();
      lines.push(
        `  #${i} ${e.entryId} ${e.kind} ${e.amountMicros} -> ${e.balanceAfterMicros} processed ${at} from ${e.source ?? "?"} (${digest})`,
      );
    });
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

let code = 2;
try {
  code = await main();
} catch (e) {
  say(`chaos run failed: ${(e as Error).stack ?? (e as Error).message}`);
  code = 2;
}
if (!interrupted) {
  await tearDown();
  say(`exit ${code} after ${since()} s`);
  process.exit(code);
}
