// Goal: exactly once through crashes and rebalances, with real consumer processes (main.ts as
// child processes). While usage keeps arriving (with resent event ids), a consumer is SIGKILLed
// at 22 points (half injected between the steps of a unit: after the atomic write, after the
// ledger relay, after the outbox delete, after the commit; half at random moments from outside)
// and restarted; then two consumers share the stream through forced rebalances. Each run ends
// with every balance equal to the engine's, every event debited once, and the ledger topic
// (deduplicated by id) summing to each balance. The seed is printed so a failure replays.

import { type ChildProcess, spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { FAULT_STAGES } from "@creditflow/consumer";
import { seededRandom } from "@creditflow/loadgen";
import { describe, expect, it } from "vitest";
import {
  expectExact,
  type LoadScenario,
  loadScenario,
  steadyUsage,
} from "../support/exact-load.ts";
import { fixture } from "../support/fixture.ts";

const fx = fixture(import.meta.url);
const { iso } = fx;
const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const SEED = Number(process.env.CF_TEST_SEED ?? Date.now() % 1_000_000);
const USERS = Array.from({ length: 30 }, (_, i) => `ck${i}`);

/** The load generator's seeded generator, so a failing run replays from its seed. */
const random = seededRandom(SEED);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

const children = new Set<ChildProcess>();
fx.onCleanup(() => {
  for (const c of children) c.kill("SIGKILL");
});

interface Child {
  process: ChildProcess;
  joined: Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startChild(
  sc: LoadScenario,
  group: string,
  keyPrefix: string,
  extraEnv: Record<string, string> = {},
): Child {
  const child = spawn(process.execPath, ["services/consumer/src/main.ts"], {
    cwd: repoRoot,
    env: {
      ...fx.serviceEnv(),
      CF_TOPIC_PREFIX: fx.topicPrefix(sc.name),
      CF_KEY_PREFIX: keyPrefix,
      CF_CONSUMER_GROUP: group,
      CF_CONSUMER_LIMITS: JSON.stringify({
        batchRecords: 20,
        // Several rounds per unit, two in flight: kills land between and inside rounds too.
        membersPerRound: 4,
        sessionTimeoutMs: 6_000,
        heartbeatIntervalMs: 500,
        sweeperIntervalMs: 500,
        partitionsConcurrently: 2,
      }),
      ...extraEnv,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let lines = "";
  const joined = new Promise<void>((resolve) => {
    child.stdout!.on("data", (chunk: Buffer) => {
      lines += chunk.toString();
      if (lines.includes('"msg":"joined group"')) resolve();
      if (lines.length > 100_000) lines = lines.slice(-1_000);
    });
  });
  child.stderr!.on("data", () => undefined);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on("exit", (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  return { process: child, joined, exited };
}

function within<T>(p: Promise<T>, ms: number): Promise<T | "timeout"> {
  return Promise.race([p, sleep(ms).then(() => "timeout" as const)]);
}

describe("consumer crashes and rebalances", () => {
  it("ends exact after 22 SIGKILLs at random points in the middle of batches", {
    timeout: 600_000,
  }, async () => {
    console.log(`consumer-crash seed ${SEED} (CF_TEST_SEED=${SEED} replays the choices)`);
    const sc = await loadScenario(fx, "crash", USERS);
    const group = iso.group("crash");
    const usage = steadyUsage(sc, "k", 150, random);
    const kills: string[] = [];
    for (let i = 0; i < 22; i++) {
      if (i % 2 === 0) {
        const stage = pick(FAULT_STAGES);
        const unit = 1 + Math.floor(random() * 4);
        const child = startChild(sc, group, iso.keyPrefix, { CF_FAULT_KILL: `${unit}:${stage}` });
        const exit = await within(child.exited, 45_000);
        if (exit === "timeout") {
          child.process.kill("SIGKILL");
          await child.exited;
          kills.push(`timeout-then-external`);
        } else {
          expect(exit.signal).toBe("SIGKILL");
          kills.push(`unit ${unit} ${stage}`);
        }
      } else {
        const child = startChild(sc, group, iso.keyPrefix);
        await within(child.joined, 45_000);
        await sleep(50 + Math.floor(random() * 1_200));
        child.process.kill("SIGKILL");
        await child.exited;
        kills.push("external");
      }
    }
    const total = await usage.stop();
    console.log(`kills: ${kills.join(", ")}; usage sent: ${total}`);
    expect(kills.filter((k) => k !== "timeout-then-external").length).toBeGreaterThanOrEqual(20);

    const last = startChild(sc, group, iso.keyPrefix);
    // Joined first: the earlier children may have left nothing to catch up, and the stop under
    // test is the one of a running consumer.
    await within(last.joined, 45_000);
    await fx.caughtUp([sc.topics.usage, sc.topics.commands], group, 120_000);
    // Graceful shutdown: SIGTERM finishes the unit in hand, commits, exits 0.
    last.process.kill("SIGTERM");
    expect(await last.exited).toEqual({ code: 0, signal: null });
    await expectExact(sc, iso.keyPrefix);
  });

  it("ends exact with two consumers and forced rebalances mid-stream", {
    timeout: 300_000,
  }, async () => {
    const sc = await loadScenario(fx, "rebalance", USERS);
    const group = iso.group("rebalance");
    const prefix = `${iso.keyPrefix}rb:`;
    const usage = steadyUsage(sc, "r", 150, random);
    const a = startChild(sc, group, prefix);
    await a.joined;
    await sleep(2_000);
    const b = startChild(sc, group, prefix); // rebalance: a shares its partitions with b
    await b.joined;
    await sleep(2_000);
    a.process.kill("SIGTERM"); // rebalance: b takes everything, a commits and leaves
    expect(await a.exited).toEqual({ code: 0, signal: null });
    const a2 = startChild(sc, group, prefix); // rebalance again, while events keep arriving
    await a2.joined;
    await sleep(2_000);
    await usage.stop();
    await fx.caughtUp([sc.topics.usage, sc.topics.commands], group, 120_000);
    b.process.kill("SIGTERM");
    a2.process.kill("SIGTERM");
    await Promise.all([b.exited, a2.exited]);
    await expectExact(sc, prefix);
  });
});
