// Carries out a fault schedule against the chaos stack while the load runs: kills of consumers
// and of the sink at their instants, and the episodes (broker, ClickHouse, Redis restart, Redis
// flush and rebuild; on a Redis Cluster also master kills and reshards, through
// deploy/local/services/redis-cluster.sh) one after another. Each fault is logged with the time
// it happened.
import { spawn } from "node:child_process";
import { appendFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { connectRedis, isCluster } from "@creditflow/member-store";
import { Redis } from "ioredis";
import type { InvariantResult } from "./invariants.ts";
import { HistoryRows, type KafkaProbe, redisProgress } from "./observe.ts";
import type { FaultRecord } from "./report.ts";
import { describeFault, EPISODE_KINDS, type Fault, SHARD_SLOTS } from "./schedule.ts";
import { type AppProcess, type ChaosStack, type ClientSettings, redisTarget } from "./stack.ts";

/** Bounds of the recoveries: past them the fault is recorded as failed (the run fails). */
export const FAULT_LIMITS = {
  brokerRejoinMs: 180_000,
  consumerStopMs: 40_000,
  /** The sink may take long to store a backlog of the ledger, as long as it moves. */
  sinkCatchUpMs: 1_800_000,
  /**
   * ...but a sink whose committed ledger lag did not shrink and that stored no row in history for
   * this long is stuck. Stored rows count as progress: after a broker restart the sink has been
   * seen storing rows with every offset commit refused (NOT_COORDINATOR) for minutes.
   */
  sinkStallMs: 120_000,
  /** A cluster master asked to SHUTDOWN must have stopped answering within this. */
  clusterShutdownMs: 30_000,
} as const;

/** A master of the Redis Cluster now: its port and the slot ranges it serves. */
export interface ClusterMaster {
  port: number;
  slots: Array<[number, number]>;
}

/**
 * The cluster's masters as a live node sees them (CLUSTER SLOTS), asking the nodes in turn: one
 * may be the master just killed.
 */
export async function clusterMasters(nodes: string): Promise<ClusterMaster[]> {
  let last: unknown = null;
  for (const node of nodes.split(",")) {
    const [host, port] = [
      node.slice(0, node.lastIndexOf(":")),
      node.slice(node.lastIndexOf(":") + 1),
    ];
    const redis = new Redis({
      host,
      port: Number(port),
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: 2_000,
    });
    redis.on("error", () => undefined);
    try {
      await redis.connect();
      const slots = (await redis.call("CLUSTER", "SLOTS")) as Array<
        [number, number, [string, number, ...unknown[]], ...unknown[]]
      >;
      const byPort = new Map<number, ClusterMaster>();
      for (const [from, to, [, masterPort]] of slots) {
        const m = byPort.get(masterPort) ?? { port: masterPort, slots: [] };
        m.slots.push([from, to]);
        byPort.set(masterPort, m);
      }
      return [...byPort.values()];
    } catch (error) {
      last = error;
    } finally {
      redis.disconnect();
    }
  }
  throw new Error(`no node of ${nodes} answered CLUSTER SLOTS`, { cause: last });
}

/** The port of the master serving shard k's slot (see SHARD_SLOTS). */
export async function masterOfShard(nodes: string, shard: number): Promise<number> {
  const slot = SHARD_SLOTS[shard];
  if (slot === undefined)
    throw new RangeError(`shard: 0..${SHARD_SLOTS.length - 1} (got ${shard})`);
  const master = (await clusterMasters(nodes)).find((m) =>
    m.slots.some(([from, to]) => from <= slot && slot <= to),
  );
  if (master === undefined) throw new Error(`no master serves slot ${slot} (shard ${shard})`);
  return master.port;
}

/** True while a process of that pid exists (a zombie not yet reaped included). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

const slotCount = (m: ClusterMaster | undefined) =>
  (m?.slots ?? []).reduce((n, [from, to]) => n + to - from + 1, 0);

export interface FaultContext {
  root: string;
  stack: ChaosStack;
  clients: ClientSettings;
  consumers: AppProcess[];
  sink: AppProcess;
  kafka: KafkaProbe;
  topics: { usage: string; commands: string; ledger: string; deadLetters: string };
  consumerGroup: string;
  sinkGroup: string;
  keyPrefix: string;
  /** History's ClickHouse database. */
  database: string;
  /** Milliseconds since the load started. */
  clock: () => number;
  log: (line: string) => void;
  /** Where the rebuild's output goes. */
  rebuildLogPath: string;
}

export interface ScheduleOutcome {
  records: FaultRecord[];
  /** The rebuild's own verdict, when one ran. */
  rebuild: InvariantResult | null;
  /**
   * Why the schedule was cut short, or null: a rebuild that failed after the flush. The consumers
   * are then left stopped and the run cannot go on (there is nothing to drain into).
   */
  aborted: string | null;
}

/** Runs a command, output appended to a log; resolves with its exit code and output. */
function runLogged(
  root: string,
  env: NodeJS.ProcessEnv,
  args: string[],
  logPath: string,
): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, {
      cwd: root,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const take = (b: Buffer) => {
      output += b.toString();
      appendFileSync(logPath, b);
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

export class FaultRunner {
  private readonly ctx: FaultContext;
  private readonly records: FaultRecord[] = [];
  private rebuild: InvariantResult | null = null;
  /** Resolved while consumers may be killed; a flush holds it while they are stopped. */
  private consumersFree: Promise<void> = Promise.resolve();
  /** The consumer kill in hand (a flush waits for its restart before stopping consumers). */
  private killInHand: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private aborted: string | null = null;
  /** Wakes the schedule's waits when it is cut short. */
  private readonly wake = new AbortController();

  constructor(ctx: FaultContext) {
    this.ctx = ctx;
  }

  /** Stop starting new faults (the one in hand finishes). */
  stop(): void {
    this.stopped = true;
    this.wake.abort();
  }

  /** Cuts the schedule short for good: no fault after this one, and no consumer started. */
  private abort(reason: string): void {
    this.aborted ??= reason;
    this.stop();
  }

  async run(schedule: Fault[]): Promise<ScheduleOutcome> {
    const episodes = schedule.filter((f) => EPISODE_KINDS.has(f.kind));
    const kills = schedule.filter((f) => !EPISODE_KINDS.has(f.kind));
    await Promise.all([this.runInOrder(episodes), this.runInOrder(kills)]);
    this.records.sort((a, b) => a.startedAtMs - b.startedAtMs);
    return { records: this.records, rebuild: this.rebuild, aborted: this.aborted };
  }

  private async runInOrder(faults: Fault[]): Promise<void> {
    for (const f of faults) {
      const wait = f.atMs - this.ctx.clock();
      if (wait > 0) await sleep(wait, undefined, { signal: this.wake.signal }).catch(() => {});
      if (this.stopped) return;
      await this.execute(f);
    }
  }

  private async execute(f: Fault): Promise<void> {
    const { ctx } = this;
    if (f.kind === "consumer-kill") await this.consumersFree;
    // A kill that waited for a flush whose rebuild failed: the consumers stay down.
    if (this.stopped) return;
    const startedAtMs = ctx.clock();
    ctx.log(`t=${(startedAtMs / 1000).toFixed(1)}s fault: ${describeFault(f)}`);
    let detail = "";
    let error: string | null = null;
    const work = this.perform(f);
    if (f.kind === "consumer-kill") this.killInHand = work.catch(() => undefined);
    try {
      detail = await work;
    } catch (e) {
      error = (e as Error).message;
    }
    const durationMs = ctx.clock() - startedAtMs;
    ctx.log(
      `t=${(ctx.clock() / 1000).toFixed(1)}s ${error === null ? "done" : "FAILED"}: ${f.kind} ${detail}${error ?? ""}`,
    );
    this.records.push({
      kind: f.kind,
      scheduledAtMs: f.atMs,
      startedAtMs,
      durationMs,
      detail,
      error,
    });
  }

  private async perform(f: Fault): Promise<string> {
    const { ctx } = this;
    switch (f.kind) {
      case "consumer-kill": {
        const c = ctx.consumers[f.target]!;
        const pid = await c.kill();
        await sleep(f.restartAfterMs);
        c.start();
        return `${c.name} pid ${pid ?? "(was not running)"}, new pid ${c.pid}`;
      }
      case "sink-kill": {
        const pid = await ctx.sink.kill();
        await sleep(f.restartAfterMs);
        ctx.sink.start();
        return `sink pid ${pid ?? "(was not running)"}, new pid ${ctx.sink.pid}`;
      }
      case "broker-restart": {
        await ctx.stack.service("kafka", "stop-broker", String(f.broker), "kill");
        await sleep(f.downMs);
        const t0 = ctx.clock();
        await ctx.stack.service("kafka", "start-broker", String(f.broker));
        const started = ctx.clock() - t0;
        await ctx.kafka.waitInSync(
          [ctx.topics.usage, ctx.topics.commands, ctx.topics.ledger, ctx.topics.deadLetters],
          3,
          FAULT_LIMITS.brokerRejoinMs,
        );
        return `broker ${f.broker}: down ${f.downMs} ms, started in ${started} ms, every partition back to 3 in-sync replicas after ${ctx.clock() - t0} ms`;
      }
      case "clickhouse-outage": {
        await ctx.stack.service("clickhouse", "stop");
        await sleep(f.downMs);
        await ctx.stack.service("clickhouse", "start");
        return `ClickHouse down ${f.downMs} ms`;
      }
      case "redis-restart": {
        if (f.shard !== undefined) return this.restartClusterMaster(f.shard, f.downMs);
        // SHUTDOWN (what the script's SIGTERM asks Redis for) writes the AOF out before exiting.
        await ctx.stack.service("redis", "stop");
        await sleep(f.downMs);
        await ctx.stack.service("redis", "start");
        return `Redis down ${f.downMs} ms (graceful)`;
      }
      case "redis-flush-rebuild":
        return this.flushAndRebuild();
      case "redis-master-kill":
        return this.killClusterMaster(f.shard, f.restartAfterMs);
      case "redis-reshard":
        return this.reshard(f.from, f.to, f.slots);
    }
  }

  private clusterNodes(): string {
    const nodes = this.ctx.clients.REDIS_CLUSTER_NODES;
    if (nodes === undefined) throw new Error("a Redis Cluster fault on a run without the cluster");
    return nodes;
  }

  /**
   * SIGKILL a master under load (`kill-master` waits until its replica took its slots over),
   * then after restartAfterMs start the killed node from its nodes.conf and AOF (`restart-node`
   * waits until the cluster is healthy, every replica linked): it must be back as a replica.
   */
  private async killClusterMaster(shard: number, restartAfterMs: number): Promise<string> {
    const { ctx } = this;
    const nodes = this.clusterNodes();
    const port = await masterOfShard(nodes, shard);
    const t0 = ctx.clock();
    const killed = await ctx.stack.service("redis-cluster", "kill-master", String(port));
    const promoted = /replica (\d+) promoted to master after (\d+)s/.exec(killed);
    const promotedMs = ctx.clock() - t0;
    await sleep(restartAfterMs);
    const t1 = ctx.clock();
    const back = await ctx.stack.service("redis-cluster", "restart-node", String(port));
    const role = / back after \d+s as (.*)/.exec(back)?.[1]?.trim() ?? "(role not printed)";
    const replicaOf = /^replica of (\d+)$/.exec(role)?.[1];
    const what =
      `master ${port} (shard ${shard}) SIGKILLed, replica ${promoted?.[1] ?? "?"} promoted ` +
      `(${(promotedMs / 1000).toFixed(1)} s after the kill), ${port} restarted after ` +
      `${restartAfterMs} ms and back as ${role} ${((ctx.clock() - t1) / 1000).toFixed(1)} s later`;
    if (replicaOf === undefined || (promoted !== null && replicaOf !== promoted[1]))
      throw new Error(`${what}: expected it back as a replica of the promoted node`);
    return what;
  }

  /** Move `slots` slots with their keys between the masters of two shards, under load. */
  private async reshard(fromShard: number, toShard: number, slots: number): Promise<string> {
    const { ctx } = this;
    const nodes = this.clusterNodes();
    const from = await masterOfShard(nodes, fromShard);
    const to = await masterOfShard(nodes, toShard);
    if (from === to)
      throw new Error(`shards ${fromShard} and ${toShard} are both served by master ${from}`);
    const before = await clusterMasters(nodes);
    const t0 = ctx.clock();
    await ctx.stack.service("redis-cluster", "reshard", String(from), String(to), String(slots));
    const after = await clusterMasters(nodes);
    const count = (ms: ClusterMaster[], port: number) => slotCount(ms.find((m) => m.port === port));
    if (count(after, from) !== count(before, from) - slots)
      throw new Error(
        `master ${from} served ${count(before, from)} slots before the reshard of ${slots} and ${count(after, from)} after`,
      );
    return (
      `${slots} slots moved from master ${from} (shard ${fromShard}) to ${to} (shard ${toShard}) ` +
      `in ${((ctx.clock() - t0) / 1000).toFixed(1)} s: ${from} now serves ${count(after, from)}, ` +
      `${to} ${count(after, to)}`
    );
  }

  /**
   * A master shut down gracefully (SHUTDOWN: it writes its AOF out and exits, as the script's
   * SIGTERM asks), down downMs, then started again from its nodes.conf and AOF (`restart-node`,
   * which waits until the cluster is healthy). Back within the cluster's 5 s node timeout it is
   * still the master; a longer absence (its AOF load included) lets its replica take over.
   */
  private async restartClusterMaster(shard: number, downMs: number): Promise<string> {
    const { ctx } = this;
    const nodes = this.clusterNodes();
    const port = await masterOfShard(nodes, shard);
    const pid = ctx.stack.pidOf(`redis-cluster-${port}`);
    if (pid === null) throw new Error(`master ${port} has no pid file in the chaos stack`);
    const t0 = ctx.clock();
    const node = new Redis({
      host: "127.0.0.1",
      port,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    node.on("error", () => undefined);
    await node.call("SHUTDOWN").catch(() => undefined); // the answer is the connection closing
    node.disconnect();
    // Gone means reaped, not only exited: the script's stop, finding a zombie that is reaped
    // between its liveness check and its kill, fails silently (exit 1, set -e).
    const deadline = Date.now() + FAULT_LIMITS.clusterShutdownMs;
    while (processExists(pid)) {
      if (Date.now() > deadline)
        throw new Error(
          `master ${port} (pid ${pid}) still there ${FAULT_LIMITS.clusterShutdownMs} ms after SHUTDOWN`,
        );
      await sleep(100);
    }
    const stoppedMs = ctx.clock() - t0;
    await sleep(downMs);
    const t1 = ctx.clock();
    const back = await ctx.stack.service("redis-cluster", "restart-node", String(port));
    const role = / back after \d+s as (.*)/.exec(back)?.[1]?.trim() ?? "(role not printed)";
    return (
      `master ${port} (shard ${shard}) shut down in ${stoppedMs} ms, down ${downMs} ms, back as ` +
      `${role} ${((ctx.clock() - t1) / 1000).toFixed(1)} s after its start (graceful)`
    );
  }

  /**
   * The operator's procedure of the README: stop consumers, history caught up, rebuild, start.
   * After a rebuild that failed (it exited non-zero or reported a mismatch) the consumers are not
   * started: they would open every member it did not write afresh and apply its records again
   * (a fresh-clone run saw entry ids twice with other content and balances off the ledger). The
   * run is cut short instead and fails naming the rebuild's first mismatch.
   */
  private async flushAndRebuild(): Promise<string> {
    const { ctx } = this;
    let release: () => void = () => {};
    this.consumersFree = new Promise((r) => {
      release = r;
    });
    /** Set once Redis is flushed: from then on only a verified rebuild lets the consumers start. */
    let flushed = false;
    let rebuilt = false;
    try {
      await this.killInHand;
      const t0 = ctx.clock();
      // Redis is lost under running consumers: the first is SIGKILLed wherever its unit was (its
      // entries applied in outboxes, maybe partly relayed, nothing committed: what the loss
      // takes away), the others stop (SIGTERM, their unit in hand finished).
      const [cut, ...others] = ctx.consumers;
      await Promise.all([cut?.kill(), ...others.map((c) => c.stop(FAULT_LIMITS.consumerStopMs))]);
      const stoppedMs = ctx.clock() - t0;
      const deadline = Date.now() + FAULT_LIMITS.sinkCatchUpMs;
      let least = Number.POSITIVE_INFINITY;
      let most = -1;
      let movedAt = Date.now();
      /** Time the sink stored rows while its committed lag stood still (commits refused). */
      let storedOnlyMs = 0;
      const history = new HistoryRows(ctx.clients.CLICKHOUSE_URL, ctx.database);
      try {
        for (;;) {
          const lag = await ctx.kafka.groupLag(ctx.sinkGroup, [ctx.topics.ledger]);
          if (lag === 0) break;
          const rows = (await history.count()) ?? -1;
          if (lag < least) {
            least = lag;
            movedAt = Date.now();
          } else if (rows > most && most >= 0) {
            storedOnlyMs += 1_000;
            movedAt = Date.now();
          }
          most = Math.max(most, rows);
          if (Date.now() > deadline || Date.now() - movedAt > FAULT_LIMITS.sinkStallMs)
            throw new Error(
              `history sink still ${lag} ledger records behind after ${ctx.clock() - t0} ms (last progress ${Date.now() - movedAt} ms ago)`,
            );
          await sleep(1_000);
        }
      } finally {
        await history.close();
      }
      const caughtUpMs = ctx.clock() - t0;
      const redis = connectRedis(redisTarget(ctx.clients), { maxRetriesPerRequest: 3 });
      let outbox: number;
      try {
        outbox = (await redisProgress(redis, ctx.keyPrefix, Date.now(), 0)).outboxWrites;
        flushed = true; // even a FLUSHALL that reports an error may have flushed
        // A cluster loses every master's data (each replica follows its master's flush).
        if (isCluster(redis)) await Promise.all(redis.nodes("master").map((n) => n.flushall()));
        else await redis.flushall();
      } finally {
        await redis.quit();
      }
      const lagAtFlush = await ctx.kafka.groupLag(ctx.consumerGroup, [
        ctx.topics.usage,
        ctx.topics.commands,
      ]);
      const r = await runLogged(
        ctx.root,
        {
          ...ctx.stack.env,
          ...ctx.clients,
          CF_CONSUMER_GROUP: ctx.consumerGroup,
          CF_KEY_PREFIX: ctx.keyPrefix,
        },
        ["services/cli/src/main.ts", "rebuild-redis", "--group", ctx.consumerGroup],
        ctx.rebuildLogPath,
      );
      const summary = /members (\d+) \(written (\d+).*mismatches (\d+)/.exec(r.output);
      const mismatch = /rebuild mismatch: (.*)/.exec(r.output);
      const handedOver = /left to the consumer (\d+), entries owed to the ledger (\d+)/.exec(
        r.output,
      );
      this.rebuild = {
        name: "rebuild from the ledger verified every member",
        checked: summary ? Number(summary[1]) : 0,
        violations: summary ? Number(summary[3]) : 1,
        first:
          mismatch?.[1] ??
          (r.code === 0 && summary
            ? null
            : `rebuild exited ${r.code}: ${r.output.trim().slice(-400)}`),
      };
      if (r.code !== 0 && this.rebuild.violations === 0) this.rebuild.violations = 1;
      const rebuiltMs = ctx.clock() - t0;
      if (this.rebuild.violations > 0) {
        const reason =
          `rebuild-redis failed after the flush (${this.rebuild.violations} member(s) not ` +
          `verified; first: ${this.rebuild.first ?? "no detail"}; log ${ctx.rebuildLogPath}): ` +
          "the consumers are not restarted (they would apply the unrebuilt members' records " +
          "a second time) and the run stops here";
        this.abort(reason);
        throw new Error(reason);
      }
      rebuilt = true; // the consumers start in the finally below
      return (
        `${cut?.name ?? "no consumer"} SIGKILLed and the others stopped in ${stoppedMs} ms, history caught up at ${caughtUpMs} ms` +
        (storedOnlyMs > 0
          ? ` (about ${storedOnlyMs / 1000} s of it storing rows with its offset commits not moving)`
          : "") +
        ", " +
        `${outbox} outbox writes and ${lagAtFlush} unapplied records at the flush, ` +
        `rebuild: ${summary ? `${summary[1]} members, ${summary[2]} written, ${summary[3]} mismatches` : "no summary"}` +
        (handedOver
          ? `, ${handedOver[1]} records left to the consumer, ${handedOver[2]} entries owed to the ledger `
          : " ") +
        `(done at ${rebuiltMs} ms)`
      );
    } finally {
      if (!flushed || rebuilt) for (const c of ctx.consumers) c.start();
      else
        this.abort(
          this.aborted ??
            "Redis was flushed and no rebuild was verified (see the fault's error): the " +
              "consumers are not restarted and the run stops here",
        );
      release();
    }
  }
}
