// Goal: the fault schedule is a function of the seed, scales with the run's length (every kind at
// least once in 2 minutes; 50+ consumer kills, 2+ broker restarts and a 60 s outage in 10), and
// keeps the stack-changing episodes apart from each other inside the load. On a Redis Cluster it
// adds master kills (1+ in 2 minutes, 3+ in 10, on different masters) and a reshard, and leaves
// the rest of the seed's schedule as it was.
import { describe, expect, it } from "vitest";
import {
  buildSchedule,
  CLUSTER_SHARDS,
  EPISODE_KINDS,
  type Fault,
  faultCounts,
} from "./schedule.ts";

const count = (faults: Fault[], kind: Fault["kind"]) =>
  faults.filter((f) => f.kind === kind).length;

describe("buildSchedule", () => {
  it("is the same for the same seed and differs for another", () => {
    const a = buildSchedule({ minutes: 2, seed: 7, consumers: 2, brokers: 3 });
    expect(buildSchedule({ minutes: 2, seed: 7, consumers: 2, brokers: 3 })).toEqual(a);
    expect(buildSchedule({ minutes: 2, seed: 8, consumers: 2, brokers: 3 })).not.toEqual(a);
  });

  it("injects every kind at least once in a 2-minute run", () => {
    const s = buildSchedule({ minutes: 2, seed: 1, consumers: 2, brokers: 3 });
    expect(count(s, "consumer-kill")).toBeGreaterThanOrEqual(8);
    expect(count(s, "sink-kill")).toBeGreaterThanOrEqual(1);
    expect(count(s, "broker-restart")).toBe(1);
    expect(count(s, "clickhouse-outage")).toBe(1);
    expect(count(s, "redis-restart")).toBe(1);
    expect(count(s, "redis-flush-rebuild")).toBe(1);
    const outage = s.find((f) => f.kind === "clickhouse-outage");
    expect(outage?.kind === "clickhouse-outage" && outage.downMs).toBeGreaterThanOrEqual(15_000);
    expect(outage?.kind === "clickhouse-outage" && outage.downMs).toBeLessThanOrEqual(20_000);
  });

  it("meets the 10-minute acceptance: 50+ consumer kills, 2+ broker restarts, a 60 s outage, one flush", () => {
    const s = buildSchedule({ minutes: 10, seed: 7, consumers: 2, brokers: 3 });
    expect(count(s, "consumer-kill")).toBeGreaterThanOrEqual(50);
    expect(count(s, "broker-restart")).toBeGreaterThanOrEqual(2);
    expect(count(s, "redis-flush-rebuild")).toBe(1);
    const outage = s.find((f) => f.kind === "clickhouse-outage");
    expect(outage?.kind === "clickhouse-outage" && outage.downMs).toBe(60_000);
  });

  it("keeps every fault inside the load, sorted, with valid targets", () => {
    for (const seed of [1, 2, 3, 99, 123_456]) {
      for (const minutes of [0.5, 2, 10]) {
        const s = buildSchedule({ minutes, seed, consumers: 3, brokers: 3 });
        const sorted = [...s].sort((a, b) => a.atMs - b.atMs);
        expect(s.map((f) => f.atMs)).toEqual(sorted.map((f) => f.atMs));
        for (const f of s) {
          expect(f.atMs).toBeGreaterThanOrEqual(0);
          expect(f.atMs).toBeLessThanOrEqual(minutes * 60_000);
          if (f.kind === "consumer-kill") expect([0, 1, 2]).toContain(f.target);
          if (f.kind === "broker-restart") expect([1, 2, 3]).toContain(f.broker);
        }
      }
    }
  });

  it("places the episodes in separate slots: an outage ends before the next episode is due", () => {
    for (const seed of [1, 5, 42]) {
      const s = buildSchedule({ minutes: 10, seed, consumers: 2, brokers: 3 });
      const episodes = s.filter((f) => EPISODE_KINDS.has(f.kind));
      for (let i = 1; i < episodes.length; i++) {
        const prev = episodes[i - 1]!;
        const busy = prev.kind === "clickhouse-outage" ? prev.downMs : 0;
        expect(episodes[i]!.atMs).toBeGreaterThanOrEqual(prev.atMs + busy);
      }
    }
  });

  it("has no cluster fault and no master target without the cluster", () => {
    const s = buildSchedule({ minutes: 10, seed: 5, consumers: 2, brokers: 3 });
    expect(count(s, "redis-master-kill")).toBe(0);
    expect(count(s, "redis-reshard")).toBe(0);
    for (const f of s) if (f.kind === "redis-restart") expect(f.shard).toBeUndefined();
    expect(
      buildSchedule({ minutes: 10, seed: 5, consumers: 2, brokers: 3, redisCluster: false }),
    ).toEqual(s);
  });

  it("on a cluster, adds 1+ master kill and a reshard in 2 minutes, 3+ kills of 3 masters in 10", () => {
    for (const seed of [1, 3, 5, 7, 42]) {
      const two = buildSchedule({ minutes: 2, seed, consumers: 2, brokers: 3, redisCluster: true });
      expect(count(two, "redis-master-kill")).toBeGreaterThanOrEqual(1);
      expect(count(two, "redis-reshard")).toBe(1);
      const ten = buildSchedule({
        minutes: 10,
        seed,
        consumers: 2,
        brokers: 3,
        redisCluster: true,
      });
      const kills = ten.filter((f) => f.kind === "redis-master-kill");
      expect(kills.length).toBeGreaterThanOrEqual(3);
      expect(new Set(kills.map((f) => f.shard)).size).toBe(CLUSTER_SHARDS);
      expect(count(ten, "redis-reshard")).toBeGreaterThanOrEqual(1);
      for (const f of [...two, ...ten]) {
        if (f.kind === "redis-master-kill") {
          expect(f.restartAfterMs).toBeGreaterThanOrEqual(3_000);
          expect(f.restartAfterMs).toBeLessThanOrEqual(10_000);
        }
        if (f.kind === "redis-reshard") {
          expect(f.from).not.toBe(f.to);
          expect([f.from, f.to].every((k) => k >= 0 && k < CLUSTER_SHARDS)).toBe(true);
          expect(f.slots).toBeGreaterThanOrEqual(300);
          expect(f.slots).toBeLessThanOrEqual(1_500);
        }
        if (f.kind === "redis-restart") expect([0, 1, 2]).toContain(f.shard);
      }
      // Every fault of the run without the cluster is still there, of the same kinds and counts.
      const plain = buildSchedule({ minutes: 10, seed, consumers: 2, brokers: 3 });
      for (const kind of new Set(plain.map((f) => f.kind)))
        expect(count(ten, kind)).toBe(count(plain, kind));
    }
  });

  it("on a cluster, keeps the episodes in order inside the load, the flush last", () => {
    for (const seed of [1, 5, 42]) {
      for (const minutes of [2, 10]) {
        const s = buildSchedule({ minutes, seed, consumers: 2, brokers: 3, redisCluster: true });
        const episodes = s.filter((f) => EPISODE_KINDS.has(f.kind));
        for (let i = 1; i < episodes.length; i++) {
          const prev = episodes[i - 1]!;
          const busy =
            prev.kind === "clickhouse-outage"
              ? prev.downMs
              : prev.kind === "redis-master-kill"
                ? prev.restartAfterMs
                : 0;
          expect(episodes[i]!.atMs).toBeGreaterThanOrEqual(prev.atMs + busy);
        }
        expect(episodes.at(-1)!.atMs).toBeLessThanOrEqual(minutes * 60_000 * 0.85);
        // The flush (consumers stopped for minutes) comes after the cluster's faults.
        expect(episodes.at(-1)!.kind).toBe("redis-flush-rebuild");
      }
    }
  });

  it("refuses a run it cannot schedule, naming the field", () => {
    expect(() => faultCounts(0)).toThrow(/minutes/);
    expect(() => buildSchedule({ minutes: 2, seed: 1, consumers: 0, brokers: 3 })).toThrow(
      /consumers/,
    );
    expect(() => buildSchedule({ minutes: 2, seed: 1, consumers: 2, brokers: 1 })).toThrow(
      /brokers/,
    );
  });
});
