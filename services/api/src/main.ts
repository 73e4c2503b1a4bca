// Runnable entry of the API: reads Redis, Kafka, registry, ClickHouse, prefixes, port, the member
// token key and the service/admin credentials from the environment, listens until SIGTERM/SIGINT,
// then drains and stops.
//   CF_JWT_SECRET=... CF_ADMIN_TOKENS=ops:... CF_SERVICE_TOKENS=agent:... node services/api/src/main.ts
import { readFileSync } from "node:fs";
import { topicNames } from "@creditflow/contracts";
import { makeConfig, parsePlans, parseRateCard } from "@creditflow/engine";
import { stopOnSignals } from "@creditflow/http-service";
import { parseClusterNodes } from "@creditflow/member-store";
import { pino } from "pino";
import { ApiOptionError, buildApi, parseTokens } from "./index.ts";

const env = process.env;
const log = pino({ name: "creditflow-api", level: env.CF_API_LOG_LEVEL ?? "info" });
const repoRoot = new URL("../../../", import.meta.url);

function readJson(path: string): unknown {
  return JSON.parse(readFileSync(path, "utf8"));
}

try {
  const rateCardPath =
    env.CF_RATE_CARD ?? new URL("deploy/config/rate-card.json", repoRoot).pathname;
  const plansPath = env.CF_PLANS ?? new URL("deploy/config/plans.json", repoRoot).pathname;
  const config = makeConfig(
    parseRateCard(readJson(rateCardPath), rateCardPath),
    parsePlans(readJson(plansPath), plansPath),
  );
  const jwtSecret = env.CF_JWT_SECRET;
  if (jwtSecret === undefined || jwtSecret === "") {
    throw new ApiOptionError(
      "CF_JWT_SECRET",
      "required (the HS256 key of member tokens, 32 bytes or more)",
    );
  }
  const port = Number(env.CF_API_PORT ?? 18080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ApiOptionError("CF_API_PORT", `a port number (got ${env.CF_API_PORT})`);
  }
  const api = await buildApi({
    // REDIS_CLUSTER_NODES set: a Redis Cluster, and REDIS_URL is not used.
    ...(parseClusterNodes(env.REDIS_CLUSTER_NODES) === undefined
      ? { redisUrl: env.REDIS_URL ?? "redis://127.0.0.1:16379" }
      : { redisClusterNodes: parseClusterNodes(env.REDIS_CLUSTER_NODES) }),
    brokers: (env.KAFKA_BROKERS ?? "127.0.0.1:19092").split(",").map((b) => b.trim()),
    schemaRegistryUrl: env.SCHEMA_REGISTRY_URL ?? "http://127.0.0.1:18081/apis/ccompat/v7",
    clickhouseUrl: env.CLICKHOUSE_URL ?? "http://127.0.0.1:18123",
    clickhouseDatabase: env.CF_CLICKHOUSE_DATABASE ?? "creditflow",
    topics: topicNames(env.CF_TOPIC_PREFIX ?? "creditflow"),
    keyPrefix: env.CF_KEY_PREFIX ?? "cf:",
    config,
    jwtSecret,
    serviceTokens: parseTokens(env.CF_SERVICE_TOKENS, "serviceTokens"),
    adminTokens: parseTokens(env.CF_ADMIN_TOKENS, "adminTokens"),
    logger: log,
  });
  await api.app.listen({ port, host: env.CF_API_HOST ?? "127.0.0.1" });
  stopOnSignals(log, () => api.close());
} catch (error) {
  log.fatal({ err: error }, "api did not start");
  process.exit(1);
}
