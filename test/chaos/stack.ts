// The chaos run's own stack: the local stack's scripts (deploy/local) run with a state folder and
// ports of its own and three Kafka brokers (and, with --redis-cluster, a Redis Cluster of its
// own), so it never touches the shared stack or another test's; and the creditflow processes
// (consumers, history sink) as supervised children whose logs go to files in that state folder.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * Ports no default uses (the shared stack has 19092/18081/16379/18123, CI's alternative 29xxx and
 * 28xxx), all below Linux's ephemeral range (32768-60999): a port in that range can be taken at
 * any moment by the local end of some outgoing connection, and a broker restart then fails to bind.
 * Brokers 1-3 listen on 27092/27094/27096, their controllers on 27093/27095/27097.
 */
export const CHAOS_PORTS = {
  CF_KAFKA_PORT: "27092",
  CF_KAFKA_CONTROLLER_PORT: "27093",
  CF_REGISTRY_PORT: "27081",
  CF_REGISTRY_MANAGEMENT_PORT: "27082",
  CF_REDIS_PORT: "27379",
  CF_CLICKHOUSE_PORT: "27123",
  /**
   * The Redis Cluster's six nodes (--redis-cluster) on 21200-21205. Each node's cluster bus is
   * its port + 10000 (31200-31205): a base of 22768 or more would put the bus in the ephemeral
   * range. Set even without the flag, so the stack's stop looks for the chaos cluster there and
   * nowhere else (the shared one is on 17100).
   */
  CF_REDIS_CLUSTER_PORT: "21200",
} as const;

export const CHAOS_BROKERS = 3;
/** Each cluster node's memory limit (the single Redis has 1 GB; a master holds a third). */
const CLUSTER_MAXMEMORY = "1gb";

/** What the services and tools need to reach the chaos stack. */
export interface ClientSettings {
  KAFKA_BROKERS: string;
  SCHEMA_REGISTRY_URL: string;
  /** The single Redis; with --redis-cluster it runs but nothing uses it. */
  REDIS_URL: string;
  CLICKHOUSE_URL: string;
  /**
   * host:port of the cluster's nodes (--redis-cluster). Set, the consumers, the rebuild and the
   * harness's own reads use the cluster (it wins over REDIS_URL everywhere).
   */
  REDIS_CLUSTER_NODES?: string;
}

/** Where the consumers' Redis is, as member-store's connectRedis takes it. */
export function redisTarget(clients: ClientSettings): {
  redisUrl?: string;
  redisClusterNodes?: string[];
} {
  return clients.REDIS_CLUSTER_NODES === undefined
    ? { redisUrl: clients.REDIS_URL }
    : { redisClusterNodes: clients.REDIS_CLUSTER_NODES.split(",") };
}

export interface ScriptResult {
  code: number;
  output: string;
}

/** Runs a bash script of deploy/local with the chaos environment; output kept and logged. */
export function runScript(
  root: string,
  env: NodeJS.ProcessEnv,
  args: string[],
  onOutput: (text: string) => void,
): Promise<ScriptResult> {
  return new Promise((resolve) => {
    const child = spawn("bash", args, { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const take = (chunk: Buffer) => {
      const text = chunk.toString();
      output += text;
      onOutput(text);
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

export class ChaosStack {
  readonly root: string;
  /** The chaos stack's state folder (its own data, logs and pid files). */
  readonly state: string;
  readonly env: NodeJS.ProcessEnv;
  /** The stack has a Redis Cluster (up starts it, down stops it) for the consumers. */
  readonly redisCluster: boolean;
  private readonly onOutput: (text: string) => void;

  constructor(root: string, state: string, onOutput: (text: string) => void, redisCluster = false) {
    this.root = root;
    this.state = state;
    this.onOutput = onOutput;
    this.redisCluster = redisCluster;
    this.env = {
      ...process.env,
      ...CHAOS_PORTS,
      CF_STATE: state,
      CF_KAFKA_BROKERS: String(CHAOS_BROKERS),
      CF_REDIS_CLUSTER: redisCluster ? "1" : "",
      CF_REDIS_CLUSTER_MAXMEMORY: CLUSTER_MAXMEMORY,
    };
  }

  private async script(args: string[], what: string): Promise<string> {
    const r = await runScript(this.root, this.env, args, this.onOutput);
    if (r.code !== 0) {
      const tail = r.output.trim().split("\n").slice(-5).join("\n");
      throw new Error(`${what} failed (exit ${r.code}): ${tail}`);
    }
    return r.output;
  }

  service(
    name: "kafka" | "redis" | "clickhouse" | "apicurio" | "redis-cluster",
    ...args: string[]
  ): Promise<string> {
    return this.script(
      [join(this.root, `deploy/local/services/${name}.sh`), ...args],
      `${name}.sh ${args.join(" ")}`,
    );
  }

  /** The pid a service script recorded for process `name` (`$CF_STATE/run/<name>.pid`), or null. */
  pidOf(name: string): number | null {
    try {
      const pid = Number(readFileSync(join(this.state, "run", `${name}.pid`), "utf8").trim());
      return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
    } catch {
      return null;
    }
  }

  /** True when every service of the chaos stack answers. */
  async running(): Promise<boolean> {
    const r = await runScript(
      this.root,
      this.env,
      [join(this.root, "deploy/local/status")],
      () => {},
    );
    return r.code === 0;
  }

  up(): Promise<string> {
    return this.script([join(this.root, "deploy/local/up")], "deploy/local/up");
  }

  down(): Promise<string> {
    return this.script([join(this.root, "deploy/local/down")], "deploy/local/down");
  }

  /** The client settings, as the service scripts print them (`<service>.sh env`). */
  async clients(): Promise<ClientSettings> {
    const out: Record<string, string> = {};
    const services = ["kafka", "apicurio", "redis", "clickhouse"] as const;
    for (const s of this.redisCluster ? [...services, "redis-cluster" as const] : services) {
      for (const line of (await this.service(s, "env")).split("\n")) {
        const eq = line.indexOf("=");
        if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1).trim();
      }
    }
    for (const k of ["KAFKA_BROKERS", "SCHEMA_REGISTRY_URL", "REDIS_URL", "CLICKHOUSE_URL"]) {
      if (!out[k]) throw new Error(`the chaos stack's scripts printed no ${k}`);
    }
    if (this.redisCluster && !out.REDIS_CLUSTER_NODES)
      throw new Error("the chaos stack's redis-cluster.sh printed no REDIS_CLUSTER_NODES");
    return out as unknown as ClientSettings;
  }
}

export interface ExitRecord {
  atMs: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * One creditflow process (a consumer, the sink) started with `node <entry>`, its output appended
 * to a log file. A process that exits without being asked to is recorded and started again.
 */
export class AppProcess {
  readonly name: string;
  private readonly entry: string;
  private readonly env: NodeJS.ProcessEnv;
  readonly logPath: string;
  private readonly root: string;
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  /** False while the harness wants it down (stopped or killed on purpose). */
  private wanted = false;
  private restartTimer: NodeJS.Timeout | null = null;
  readonly unexpectedExits: ExitRecord[] = [];
  starts = 0;
  private readonly clock: () => number;

  constructor(o: {
    name: string;
    root: string;
    entry: string;
    env: NodeJS.ProcessEnv;
    logPath: string;
    clock: () => number;
  }) {
    this.name = o.name;
    this.root = o.root;
    this.entry = o.entry;
    this.env = o.env;
    this.logPath = o.logPath;
    this.clock = o.clock;
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  start(): void {
    if (this.restartTimer !== null) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    this.wanted = true;
    if (this.child !== null) return;
    const fd = openSync(this.logPath, "a");
    const child = spawn(process.execPath, [this.entry], {
      cwd: this.root,
      env: this.env,
      stdio: ["ignore", fd, fd],
    });
    closeSync(fd);
    this.starts++;
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.on("exit", (code, signal) => {
        this.child = null;
        if (this.wanted) {
          this.unexpectedExits.push({ atMs: this.clock(), code, signal });
          this.restartTimer = setTimeout(() => {
            this.restartTimer = null;
            if (this.wanted) this.start();
          }, 1_000);
        }
        resolve();
      });
    });
  }

  /** SIGKILL now; resolves once the process is gone. */
  async kill(): Promise<number | null> {
    this.wanted = false;
    const child = this.child;
    if (child === null) return null;
    child.kill("SIGKILL");
    await this.exited;
    return child.pid ?? null;
  }

  /** SIGTERM (finish the work in hand), SIGKILL after timeoutMs. */
  async stop(timeoutMs: number): Promise<void> {
    this.wanted = false;
    if (this.restartTimer !== null) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const child = this.child;
    if (child === null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Resolves once the log shows `marker` since byte `from` (start-up done), or throws. */
  async waitForLog(marker: string, from: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const text = readFileSync(this.logPath).subarray(from).toString();
      if (text.includes(marker)) return;
      await sleep(250);
    }
    throw new Error(`${this.name}: no "${marker}" in ${this.logPath} after ${timeoutMs} ms`);
  }
}
