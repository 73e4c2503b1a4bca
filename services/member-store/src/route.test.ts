// Goal: the Redis target is checked before anything connects: REDIS_CLUSTER_NODES parsed as
// host:port pairs (a bad one named), unset or empty meaning no cluster, and a target naming both
// a single Redis and a cluster, or neither, refused.

import { describe, expect, it } from "vitest";
import { MemberStoreError } from "./errors.ts";
import { connectRedis, isCluster, parseClusterNodes } from "./route.ts";

describe("redis target", () => {
  it("parses REDIS_CLUSTER_NODES, naming a bad node", () => {
    expect(parseClusterNodes(undefined)).toBeUndefined();
    expect(parseClusterNodes(" ")).toBeUndefined();
    expect(parseClusterNodes("127.0.0.1:17100, redis-1:6379")).toEqual([
      "127.0.0.1:17100",
      "redis-1:6379",
    ]);
    for (const bad of ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", ":6379", "h:p"]) {
      expect(() => parseClusterNodes(`127.0.0.1:17100,${bad}`)).toThrow(
        new RegExp(`"${bad}" is not host:port`),
      );
    }
  });

  it("refuses both a URL and cluster nodes, or neither; connects lazily to either", () => {
    const both = () =>
      connectRedis({ redisUrl: "redis://x:1", redisClusterNodes: ["x:2"] }, { lazyConnect: true });
    expect(both).toThrow(MemberStoreError);
    expect(both).toThrow(/not both/);
    expect(() => connectRedis({})).toThrow(/redisUrl/);
    const cluster = connectRedis({ redisClusterNodes: ["127.0.0.1:1"] }, { lazyConnect: true });
    const single = connectRedis({ redisUrl: "redis://127.0.0.1:1" }, { lazyConnect: true });
    expect([isCluster(cluster), isCluster(single)]).toEqual([true, false]);
    cluster.disconnect();
    single.disconnect();
  });
});
