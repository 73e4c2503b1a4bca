// Goal: the local stack's Redis Cluster (CF_REDIS_CLUSTER=1, deploy/local/services/redis-cluster.sh)
// is what the design asks for: keys of different hash tags spread over three masters and read back
// through ioredis' Cluster client, every slot served (cluster_state:ok), each master followed by
// one replica, and a write acknowledged by a replica (`WAIT 1 1000` answers 1). Runs only when
// REDIS_CLUSTER_NODES (from `deploy/local/status --env`) names the nodes.

import { Cluster, type Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isolation } from "../support/stack.ts";

const nodesEnv = process.env.REDIS_CLUSTER_NODES ?? "";
const iso = isolation(import.meta.url);
const tagCount = 30;

/** `host:port,host:port` as ioredis start-up nodes. */
function startupNodes(csv: string): { host: string; port: number }[] {
  return csv.split(",").map((hostPort) => {
    const [host, port] = hostPort.trim().split(":");
    return { host: host!, port: Number(port) };
  });
}

/** CLUSTER NODES as rows: id, port, role, the id of the master a replica follows. */
function parseClusterNodes(text: string) {
  return text
    .trim()
    .split("\n")
    .map((line) => {
      const [id, address, flags, masterId] = line.split(" ");
      return {
        id: id!,
        port: Number(address!.split("@")[0]!.split(":")[1]),
        role: flags!.includes("master") ? "master" : flags!.includes("slave") ? "replica" : flags!,
        failed: flags!.includes("fail"),
        masterId: masterId!,
      };
    });
}

describe.skipIf(nodesEnv === "")("redis cluster of the local stack", () => {
  let cluster: Cluster;
  const keys = Array.from({ length: tagCount }, (_, i) => `${iso.keyPrefix}{member-${i}}:balance`);

  beforeAll(async () => {
    cluster = new Cluster(startupNodes(nodesEnv), { lazyConnect: true });
    await cluster.connect();
  });
  afterAll(async () => {
    if (cluster.status === "ready") await Promise.all(keys.map((key) => cluster.del(key)));
    cluster.disconnect();
  });

  it("writes keys with different hash tags and reads them back from all three masters", async () => {
    await Promise.all(keys.map((key, i) => cluster.set(key, String(i * 1_000_000))));
    const values = await Promise.all(keys.map((key) => cluster.get(key)));
    expect(values).toEqual(keys.map((_, i) => String(i * 1_000_000)));

    const owners = new Set<string>();
    for (const key of keys) {
      const slot = Number(await cluster.call("CLUSTER", "KEYSLOT", key));
      owners.add(cluster.slots[slot]![0]!);
    }
    expect(owners.size).toBe(3);
  });

  it("serves every slot with three masters, each followed by one replica", async () => {
    for (const node of cluster.nodes("all")) {
      const info = String(await node.call("CLUSTER", "INFO"));
      expect(info).toMatch(/cluster_state:ok/);
      expect(info).toMatch(/cluster_slots_ok:16384/);
    }
    const rows = parseClusterNodes(String(await cluster.call("CLUSTER", "NODES")));
    const masters = rows.filter((r) => r.role === "master" && !r.failed);
    const replicas = rows.filter((r) => r.role === "replica" && !r.failed);
    expect(masters).toHaveLength(3);
    expect(replicas).toHaveLength(3);
    expect(new Set(replicas.map((r) => r.masterId))).toEqual(new Set(masters.map((m) => m.id)));
  });

  it("has a replica acknowledge a master's write (WAIT 1 1000 answers 1)", async () => {
    const masters: Redis[] = cluster.nodes("master");
    expect(masters).toHaveLength(3);
    for (const master of masters) {
      // A key this master owns: WAIT counts the writes of the connection that sends it.
      let owned: string | undefined;
      for (const key of keys) {
        const slot = Number(await master.call("CLUSTER", "KEYSLOT", key));
        if (cluster.slots[slot]![0] === `${master.options.host}:${master.options.port}`) {
          owned = key;
          break;
        }
      }
      expect(owned, `a key owned by ${master.options.port}`).toBeDefined();
      await master.set(owned!, "acknowledged");
      expect(await master.call("WAIT", "1", "1000")).toBe(1);
    }
  });
});
