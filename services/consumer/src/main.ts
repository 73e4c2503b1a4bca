// The runnable consumer process: configuration from the environment, SIGTERM/SIGINT finish the
// unit in hand, commit and disconnect. `node services/consumer/src/main.ts`.

import { readFileSync } from "node:fs";
import { topicNames } from "@creditflow/contracts";
import { makeConfig, parsePlans, parseRateCard } from "@creditflow/engine";
import { parseClusterNodes } from "@creditflow/member-store";
import { pino } from "pino";
import { startConsumer } from "./consumer.ts";
import { ConsumerError } from "./errors.ts";
import { type ConsumerLimits, FAULT_STAGES, type FaultStage } from "./options.ts";

const log = pino({ name: "creditflow-consumer", level: process.env.CF_LOG_LEVEL ?? "info" });
const env = process.env;
/** Longest a SIGTERM may take to finish the unit in hand, commit and disconnect. */
const SHUTDOWN_TIMEOUT_MS = 30_000;
const repoRoot = new URL("../../../", import.meta.url);

function readJson(path: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (cause) {
    throw new ConsumerError("invalid_config", `${what}: cannot read ${path}`, { cause });
  }
}

/** CF_CONSUMER_LIMITS: JSON of limits to override (validated with the rest at start-up). */
function limitsFromEnv(): Partial<ConsumerLimits> {
  const text = env.CF_CONSUMER_LIMITS;
  if (text === undefined || text === "") return {};
  try {
    return JSON.parse(text) as Partial<ConsumerLimits>;
  } catch (cause) {
    throw new ConsumerError("invalid_options", "CF_CONSUMER_LIMITS: not JSON", { cause });
  }
}

/** CF_FAULT_KILL=<unit>:<stage>: the crash-test hook (see ConsumerOptions.faultKill). */
function faultKillFromEnv(): { unit: number; stage: FaultStage } | undefined {
  const text = env.CF_FAULT_KILL;
  if (text === undefined || text === "") return undefined;
  const [unit, stage] = text.split(":");
  if (!FAULT_STAGES.includes(stage as FaultStage) || !Number.isSafeInteger(Number(unit))) {
    throw new ConsumerError(
      "invalid_options",
      `CF_FAULT_KILL: expected <unit>:<stage>, got ${text}`,
    );
  }
  return { unit: Number(unit), stage: stage as FaultStage };
}

/** REDIS_CLUSTER_NODES=host:port,… (a cluster) or REDIS_URL (one Redis, the local default). */
function redisFromEnv(): { redisUrl?: string; redisClusterNodes?: string[] } {
  let nodes: string[] | undefined;
  try {
    nodes = parseClusterNodes(env.REDIS_CLUSTER_NODES);
  } catch (cause) {
    throw new ConsumerError("invalid_options", `REDIS_CLUSTER_NODES: ${(cause as Error).message}`, {
      cause,
    });
  }
  if (nodes !== undefined) return { redisClusterNodes: nodes };
  return { redisUrl: env.REDIS_URL ?? "redis://127.0.0.1:16379" };
}

async function main(): Promise<void> {
  const rateCardPath =
    env.CF_RATE_CARD ?? new URL("deploy/config/rate-card.json", repoRoot).pathname;
  const plansPath = env.CF_PLANS ?? new URL("deploy/config/plans.json", repoRoot).pathname;
  const config = makeConfig(
    parseRateCard(readJson(rateCardPath, "CF_RATE_CARD"), rateCardPath),
    parsePlans(readJson(plansPath, "CF_PLANS"), plansPath),
  );
  const metricsPort = env.CF_CONSUMER_METRICS_PORT;
  // The handlers go in before the start: a SIGTERM while joining the group waits for the start
  // to finish and then stops as usual (exit 0), instead of killing the process by default.
  let running: { stop(): Promise<void> } | undefined;
  let signalled = false;
  const stop = () => {
    running?.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "stop failed");
        process.exit(1);
      },
    );
  };
  const shutdown = (signal: string) => {
    if (signalled) return;
    signalled = true;
    log.info({ signal }, "stopping: finishing the unit in hand");
    // Bounded: a stop that hangs (a broker gone) ends the process anyway; every unit not yet
    // committed is redelivered and applied once (README), so exiting early is always safe.
    setTimeout(() => {
      log.error({ afterMs: SHUTDOWN_TIMEOUT_MS }, "stop did not finish; exiting");
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS).unref();
    stop();
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  running = await startConsumer({
    brokers: (env.KAFKA_BROKERS ?? "127.0.0.1:19092").split(",").map((b) => b.trim()),
    schemaRegistryUrl: env.SCHEMA_REGISTRY_URL ?? "http://127.0.0.1:18081/apis/ccompat/v7",
    // REDIS_CLUSTER_NODES set: a Redis Cluster, and REDIS_URL is not used.
    ...redisFromEnv(),
    topics: topicNames(env.CF_TOPIC_PREFIX ?? "creditflow"),
    keyPrefix: env.CF_KEY_PREFIX ?? "cf:",
    groupId: env.CF_CONSUMER_GROUP ?? "creditflow-consumer",
    config,
    limits: limitsFromEnv(),
    metricsPort: metricsPort === undefined || metricsPort === "" ? undefined : Number(metricsPort),
    sweeper: env.CF_CONSUMER_SWEEPER !== "off",
    logger: log,
    faultKill: faultKillFromEnv(),
  });
  if (signalled) stop();
}

main().catch((err: unknown) => {
  log.fatal({ err }, "consumer failed to start");
  process.exit(1);
});
