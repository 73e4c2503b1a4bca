// Where the member store's commands go: one Redis, or the master serving each key's slot in a
// Redis Cluster. A round's commands are grouped by node, one pipeline per node (a pipeline of
// ioredis's Cluster may not span nodes, and it cannot see the keys of prebuilt commands, so it
// would send them to a random node); a redirection (MOVED, ASK, TRYAGAIN, CLUSTERDOWN: the
// command did not run) sends the affected commands again where the cluster says, and NOSCRIPT
// loads the script on that node first. The nodes a round wrote to are asked for their replicas'
// acknowledgement on the same connection (WAIT counts the writes of the connection that sends it).

import { once } from "node:events";
import calculateSlot from "cluster-key-slot";
import { Cluster, Command, type Pipeline, Redis, type RedisOptions } from "ioredis";
import { MemberStoreError } from "./errors.ts";

/** A single Redis or a Redis Cluster: the member store runs the same against either. */
export type RedisClient = Redis | Cluster;

/** Where Redis is: one URL, or the start-up nodes of a cluster (`host:port`, validated). */
export interface RedisTarget {
  redisUrl?: string;
  /** host:port of some cluster nodes (ioredis finds the others); set means cluster mode. */
  redisClusterNodes?: readonly string[];
}

/**
 * `host:port,host:port` (REDIS_CLUSTER_NODES) as a list; `invalid` names the first entry that is
 * not a host and a port in 1..65535. An empty or unset text is no cluster (undefined).
 */
export function parseClusterNodes(text: string | undefined): string[] | undefined {
  if (text === undefined || text.trim() === "") return undefined;
  const nodes = text.split(",").map((n) => n.trim());
  for (const n of nodes) checkNode(n);
  return nodes;
}

function checkNode(node: string): { host: string; port: number } {
  const at = node.lastIndexOf(":");
  const host = node.slice(0, at);
  const port = Number(node.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new MemberStoreError(
      "invalid_target",
      `redisClusterNodes: "${node}" is not host:port (port 1..65535)`,
      { field: "redisClusterNodes" },
    );
  }
  return { host, port };
}

/**
 * A client for the target: a Cluster when redisClusterNodes is set, else one Redis at redisUrl.
 * `options` applies to the single Redis and to each node of a cluster.
 */
export function connectRedis(target: RedisTarget, options: RedisOptions = {}): RedisClient {
  const nodes = target.redisClusterNodes;
  if (nodes !== undefined && nodes.length > 0) {
    if (target.redisUrl !== undefined && target.redisUrl !== "") {
      throw new MemberStoreError(
        "invalid_target",
        "redisUrl and redisClusterNodes: set one of them, not both",
        { field: "redisUrl" },
      );
    }
    const { enableAutoPipelining, lazyConnect, ...redisOptions } = options;
    return new Cluster(nodes.map(checkNode), {
      redisOptions,
      enableAutoPipelining,
      lazyConnect,
      maxRedirections: MAX_ATTEMPTS,
    });
  }
  if (target.redisUrl === undefined || target.redisUrl === "") {
    throw new MemberStoreError("invalid_target", "redisUrl: set it, or redisClusterNodes", {
      field: "redisUrl",
    });
  }
  return new Redis(target.redisUrl, options);
}

export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}

/**
 * A command whose bytes the caller built (respCommands); ioredis sends them and reads the reply
 * as for any command (and transforms it as for `name`: an HGETALL's array becomes an object).
 * Used for the member writes, loads and outbox releases: ioredis's own builder took more time
 * than the rest of a member's write (the consumer bench's profile: 1.3 s of 2.9), making a string
 * or a buffer per argument and copying the command twice.
 */
export class PrebuiltCommand extends Command {
  private readonly bytes: Buffer;
  constructor(name: string, bytes: Buffer) {
    super(name);
    this.bytes = bytes;
  }
  override toWritable(): Buffer {
    return this.bytes;
  }
}

/** One command to route: the key that places it, and its bytes (respCommands). */
export interface Routed {
  key: string;
  name: string;
  bytes: Buffer;
}

/** Attempts of one command through redirections before its round fails (ioredis's own: 16). */
const MAX_ATTEMPTS = 16;
/** Wait before sending again after TRYAGAIN or CLUSTERDOWN (a slot in migration, a failover). */
const RETRY_PAUSE_MS = 100;

const REDIRECTED = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN) /;

export interface RoutedAnswers {
  /** Each command's error or reply, in the order given. */
  answers: [Error | null, unknown][];
  /** The node connections the commands ran on (for WAIT). */
  nodes: Set<Redis>;
}

/** Why a command was sent again: a cluster's redirection, or a node without the script. */
export type Redirection = "moved" | "ask" | "tryagain" | "clusterdown" | "noscript";

/** Routes prebuilt commands to the node serving their key; see the module comment. */
export class NodeRouter {
  readonly client: RedisClient;
  /** Told of every command sent again, and why (the consumer's metrics). */
  private readonly onRedirect: (why: Redirection) => void;

  constructor(client: RedisClient, onRedirect: (why: Redirection) => void = () => undefined) {
    this.client = client;
    this.onRedirect = onRedirect;
  }

  /** Sends the commands, one pipeline per node; `script` is loaded where NOSCRIPT answers. */
  async send(items: readonly Routed[], what: string, script?: string): Promise<RoutedAnswers> {
    const answers: [Error | null, unknown][] = new Array(items.length);
    const nodes = new Set<Redis>();
    if (items.length === 0) return { answers, nodes };
    const client = this.client;
    if (!isCluster(client)) {
      nodes.add(client);
      let todo = items.map((_, i) => i);
      for (let attempt = 0; todo.length > 0; attempt++) {
        const got = await execOn(
          client,
          todo.map((i) => ({ item: items[i]!, asking: false })),
          what,
        );
        const again: number[] = [];
        got.forEach(([error, value], j) => {
          const i = todo[j]!;
          if (error !== null && script !== undefined && isNoScript(error) && attempt === 0) {
            this.onRedirect("noscript");
            again.push(i);
          } else answers[i] = [error, value];
        });
        if (again.length > 0) await loadScript(client, script!, what);
        todo = again;
      }
      return { answers, nodes };
    }
    await ready(client, what);
    let todo: { i: number; askAt?: string }[] = items.map((_, i) => ({ i }));
    for (let attempt = 0; todo.length > 0; attempt++) {
      if (attempt >= MAX_ATTEMPTS) {
        const [i] = [todo[0]!.i];
        throw new MemberStoreError(
          "redis_failed",
          `${what}: ${todo.length} command(s) still redirected after ${MAX_ATTEMPTS} attempts, e.g. key ${items[i]!.key}`,
        );
      }
      const byNode = new Map<Redis, { i: number; asking: boolean }[]>();
      let unplaced = false;
      for (const t of todo) {
        const node =
          t.askAt !== undefined ? nodeAt(client, t.askAt) : nodeOfKey(client, items[t.i]!.key);
        if (node === undefined) {
          unplaced = true;
          continue;
        }
        const list = byNode.get(node) ?? [];
        list.push({ i: t.i, asking: t.askAt !== undefined });
        byNode.set(node, list);
      }
      const next: { i: number; askAt?: string }[] = [];
      if (unplaced) {
        for (const t of todo) {
          const node =
            t.askAt !== undefined ? nodeAt(client, t.askAt) : nodeOfKey(client, items[t.i]!.key);
          if (node === undefined) next.push({ i: t.i });
        }
      }
      let refresh = unplaced;
      let pause = false;
      const noScript = new Set<Redis>();
      await Promise.all(
        [...byNode].map(async ([node, list]) => {
          let got: [Error | null, unknown][];
          try {
            got = await execOn(
              node,
              list.map((l) => ({ item: items[l.i]!, asking: l.asking })),
              what,
            );
          } catch (error) {
            // A node gone (a master killed): the cluster's map is refreshed for the redo.
            client.refreshSlotsCache();
            throw error;
          }
          nodes.add(node);
          got.forEach(([error, value], j) => {
            const i = list[j]!.i;
            if (error === null) {
              answers[i] = [null, value];
              return;
            }
            const m = REDIRECTED.exec(error.message);
            if (m !== null) {
              this.onRedirect(m[1]!.toLowerCase() as Redirection);
              if (m[1] === "MOVED") {
                // The slot's owner as the node says (ioredis does the same for its own
                // commands), then the whole map refreshed: the next attempt goes there.
                const [, slot, at] = error.message.split(" ");
                client.slots[Number(slot)] = [at!];
                refresh = true;
              } else if (m[1] !== "ASK") pause = true;
              next.push(m[1] === "ASK" ? { i, askAt: error.message.split(" ")[2]! } : { i });
            } else if (script !== undefined && isNoScript(error)) {
              this.onRedirect("noscript");
              noScript.add(node);
              next.push({ i });
            } else answers[i] = [error, value];
          });
        }),
      );
      for (const node of noScript) await loadScript(node, script!, what);
      if (refresh) await refreshSlots(client);
      if (pause || (unplaced && next.length === todo.length)) {
        await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
      }
      todo = next;
    }
    return { answers, nodes };
  }

  /**
   * Waits until at least `replicas` replicas of each node hold every write this connection sent
   * (WAIT), at most `timeoutMs`; fewer is `replicas_behind` (the writes may be lost in a
   * failover: whatever they belong to is not done, and is redone).
   */
  async waitReplicas(nodes: Iterable<Redis>, replicas: number, timeoutMs: number, what: string) {
    if (replicas <= 0) return;
    await Promise.all(
      [...nodes].map(async (node) => {
        let acked: unknown;
        try {
          acked = await node.call("WAIT", replicas, timeoutMs);
        } catch (cause) {
          throw new MemberStoreError("redis_failed", `${what}: WAIT on ${nodeName(node)}`, {
            cause,
          });
        }
        if (typeof acked !== "number" || acked < replicas) {
          throw new MemberStoreError(
            "replicas_behind",
            `${what}: ${String(acked)} of ${replicas} replica(s) of ${nodeName(node)} acknowledged within ${timeoutMs} ms`,
          );
        }
      }),
    );
  }

  /** The nodes holding keys: the single Redis, or every master of the cluster. */
  async masters(): Promise<Redis[]> {
    const client = this.client;
    if (!isCluster(client)) return [client];
    await ready(client, "list masters");
    return client.nodes("master");
  }
}

function nodeName(node: Redis): string {
  return `${node.options.host}:${node.options.port}`;
}

function isNoScript(error: Error): boolean {
  return error.message.startsWith("NOSCRIPT");
}

async function loadScript(node: Redis, script: string, what: string): Promise<void> {
  try {
    await node.script("LOAD", script);
  } catch (cause) {
    throw new MemberStoreError("redis_failed", `${what}: load the script`, { cause });
  }
}

/** One pipeline on one connection; ASKING before a command sent to a slot's importing node. */
async function execOn(
  node: Redis,
  list: { item: Routed; asking: boolean }[],
  what: string,
): Promise<[Error | null, unknown][]> {
  const pipeline = node.pipeline() as unknown as Pipeline;
  for (const { item, asking } of list) {
    if (asking) pipeline.sendCommand(new Command("asking", []));
    pipeline.sendCommand(new PrebuiltCommand(item.name, item.bytes));
  }
  let got: [Error | null, unknown][] | null;
  try {
    got = await pipeline.exec();
  } catch (cause) {
    throw new MemberStoreError("redis_failed", `${what}: pipeline failed`, { cause });
  }
  if (got === null) throw new MemberStoreError("redis_failed", `${what}: pipeline discarded`);
  if (got.length === list.length) return got;
  const out: [Error | null, unknown][] = [];
  let at = 0;
  for (const { asking } of list) {
    if (asking) at++;
    out.push(got[at++]!);
  }
  return out;
}

/** The master serving the key's slot, as the cluster's map says (undefined: none known). */
function nodeOfKey(cluster: Cluster, key: string): Redis | undefined {
  const owners = cluster.slots[calculateSlot(key)];
  return owners === undefined || owners.length === 0 ? undefined : nodeAt(cluster, owners[0]!);
}

function nodeAt(cluster: Cluster, hostPort: string): Redis | undefined {
  for (const node of cluster.nodes("all")) {
    if (nodeName(node) === hostPort && node.status !== "end") return node;
  }
  return undefined;
}

function refreshSlots(cluster: Cluster): Promise<void> {
  return new Promise((resolve) => cluster.refreshSlotsCache(() => resolve()));
}

async function ready(cluster: Cluster, what: string): Promise<void> {
  if (cluster.status === "ready") return;
  if (cluster.status === "wait") cluster.connect().catch(() => undefined);
  if (cluster.status === "end" || cluster.status === "close") {
    throw new MemberStoreError("redis_failed", `${what}: the cluster connection is closed`);
  }
  await once(cluster, "ready");
}
