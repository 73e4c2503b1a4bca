// The Redis Cluster the cluster tests run against (REDIS_CLUSTER_NODES, stack.ts): its nodes as
// CLUSTER NODES lists them, the master that owns a key, and the local stack's script
// (deploy/local/services/redis-cluster.sh) that waits for the cluster to be healthy, kills and
// restarts a node and moves slots between masters.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Cluster } from "ioredis";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

/**
 * Runs deploy/local/services/redis-cluster.sh with `args` (`wait-healthy 60`, `kill-master
 * <port>`, `restart-node <port>`, `reshard <from> <to> <slots>`) and answers what it printed; a
 * failure throws with its output.
 */
export function clusterScript(...args: string[]): string {
  return execFileSync("bash", ["deploy/local/services/redis-cluster.sh", ...args], {
    cwd: repoRoot,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 180_000,
  });
}

export interface ClusterNode {
  id: string;
  /** host:port, as the cluster's clients name the node. */
  address: string;
  port: number;
  role: "master" | "replica" | string;
  /** Flagged `fail` by the cluster. */
  failed: boolean;
  /** The id of the master a replica follows ("-" for a master). */
  masterId: string;
}

/** The cluster's nodes, as CLUSTER NODES says now. */
export async function clusterNodes(cluster: Cluster): Promise<ClusterNode[]> {
  const text = String(await cluster.call("CLUSTER", "NODES"));
  return text
    .trim()
    .split("\n")
    .map((line) => {
      const [id, bus, flags, masterId] = line.split(" ");
      const address = bus!.split("@")[0]!;
      return {
        id: id!,
        address,
        port: Number(address.split(":")[1]),
        role: flags!.includes("master") ? "master" : flags!.includes("slave") ? "replica" : flags!,
        failed: flags!.includes("fail"),
        masterId: masterId!,
      };
    });
}

/** The ports of the masters serving now (none flagged failed). */
export async function masterPorts(cluster: Cluster): Promise<number[]> {
  return (await clusterNodes(cluster))
    .filter((n) => n.role === "master" && !n.failed)
    .map((n) => n.port);
}

/** The hash slot of a key, as the cluster computes it. */
export async function slotOf(cluster: Cluster, key: string): Promise<number> {
  return Number(await cluster.call("CLUSTER", "KEYSLOT", key));
}

/** host:port of the master that owns a key's slot, by the client's slot table. */
export async function ownerOf(cluster: Cluster, key: string): Promise<string> {
  return cluster.slots[await slotOf(cluster, key)]![0]!;
}
