// Goal: the local stack's Redis Cluster (CF_REDIS_CLUSTER=1, deploy/local/services/redis-cluster.sh)
// is what the design asks for: keys of different hash tags spread over three masters and read back
// through ioredis' Cluster client, every slot served (cluster_state:ok), each master followed by
// one replica, and a write acknowledged by a replica (`WAIT 1 1000` answers 1). Runs only when
// REDIS_CLUSTER_NODES (from `deploy/local/status --env`) names the nodes.

import type { Cluster, Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { fixture } from "../support/fixture.ts";
import { clusterNodes, ownerOf } from "../support/redis-cluster.ts";
import { onCluster } from "../support/stack.ts";

const fx = fixture(import.meta.url);
const tagCount = 30;

describe.skipIf(!onCluster)("redis cluster of the local stack", () => {
  /** The file's Redis: a Cluster client, as the skip guarantees. */
  const cluster = () => fx.redis as Cluster;
  const keys = Array.from({ length: tagCount }, (_, i) => `${fx.keyPrefix}{member-${i}}:balance`);

  it("writes keys with different hash tags and reads them back from all three masters", async () => {
    await Promise.all(keys.map((key, i) => cluster().set(key, String(i * 1_000_000))));
    const values = await Promise.all(keys.map((key) => cluster().get(key)));
    expect(values).toEqual(keys.map((_, i) => String(i * 1_000_000)));

    const owners = new Set<string>();
    for (const key of keys) owners.add(await ownerOf(cluster(), key));
    expect(owners.size).toBe(3);
  });

  it("serves every slot with three masters, each followed by one replica", async () => {
    for (const node of cluster().nodes("all")) {
      const info = String(await node.call("CLUSTER", "INFO"));
      expect(info).toMatch(/cluster_state:ok/);
      expect(info).toMatch(/cluster_slots_ok:16384/);
    }
    const rows = await clusterNodes(cluster());
    const masters = rows.filter((r) => r.role === "master" && !r.failed);
    const replicas = rows.filter((r) => r.role === "replica" && !r.failed);
    expect(masters).toHaveLength(3);
    expect(replicas).toHaveLength(3);
    expect(new Set(replicas.map((r) => r.masterId))).toEqual(new Set(masters.map((m) => m.id)));
  });

  it("has a replica acknowledge a master's write (WAIT 1 1000 answers 1)", async () => {
    const masters: Redis[] = cluster().nodes("master");
    expect(masters).toHaveLength(3);
    for (const master of masters) {
      // A key this master owns: WAIT counts the writes of the connection that sends it.
      let owned: string | undefined;
      for (const key of keys) {
        if ((await ownerOf(cluster(), key)) === `${master.options.host}:${master.options.port}`) {
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
