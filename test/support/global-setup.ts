// Global setup of the integration tests: finds the stack, in this order:
//  1. service addresses from the environment (KAFKA_BROKERS, SCHEMA_REGISTRY_URL, REDIS_URL,
//     CLICKHOUSE_URL, all four set);
//  2. testcontainers, when CF_TESTCONTAINERS=1 and a Docker engine answers;
//  3. the local stack from packages (deploy/local/up, which starts only what is not running).
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import type { StackUrls } from "./stack.ts";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

function fromEnv(): StackUrls | undefined {
  const { KAFKA_BROKERS, SCHEMA_REGISTRY_URL, REDIS_URL, CLICKHOUSE_URL } = process.env;
  if (!KAFKA_BROKERS || !SCHEMA_REGISTRY_URL || !REDIS_URL || !CLICKHOUSE_URL) return undefined;
  return {
    kafkaBrokers: KAFKA_BROKERS.split(","),
    schemaRegistryUrl: SCHEMA_REGISTRY_URL,
    redisUrl: REDIS_URL,
    clickhouseUrl: CLICKHOUSE_URL,
    source: "env",
  };
}

function parseEnvLines(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return out;
}

function fromLocalStack(): StackUrls {
  // `up` is idempotent and waits for health; its output goes to our stderr for the CI log.
  execFileSync("bash", ["deploy/local/up"], { cwd: repoRoot, stdio: ["ignore", 2, 2] });
  const env = parseEnvLines(
    execFileSync("bash", ["deploy/local/status", "--env"], { cwd: repoRoot, encoding: "utf8" }),
  );
  const need = ["KAFKA_BROKERS", "SCHEMA_REGISTRY_URL", "REDIS_URL", "CLICKHOUSE_URL"];
  for (const key of need) {
    if (!env[key]) throw new Error(`deploy/local/status --env did not print ${key}`);
  }
  return {
    kafkaBrokers: env.KAFKA_BROKERS!.split(","),
    schemaRegistryUrl: env.SCHEMA_REGISTRY_URL!,
    redisUrl: env.REDIS_URL!,
    clickhouseUrl: env.CLICKHOUSE_URL!,
    source: "local",
  };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let stack = fromEnv();
  let teardown = async (): Promise<void> => {};
  if (!stack && process.env.CF_TESTCONTAINERS === "1") {
    const { startContainers } = await import("./containers.ts");
    const started = await startContainers();
    stack = started.urls;
    teardown = started.stop;
  }
  stack ??= fromLocalStack();
  project.provide("stack", stack);
  return teardown;
}
