// Where the CLI finds the system: the same environment variables as the services, defaulting to
// the local stack's addresses (deploy/local/env.sh), and the shipped rate card and plans.
import { readFileSync } from "node:fs";
import { topicNames } from "@creditflow/contracts";
import {
  type EngineConfig,
  makeConfig,
  parsePlans,
  parseRateCard,
  type RateCard,
} from "@creditflow/engine";
import type { SystemAddresses } from "@creditflow/history";
import { parseClusterNodes } from "@creditflow/member-store";

const repoFile = (path: string) => new URL(`../../../${path}`, import.meta.url).pathname;

/** The system's addresses (the rebuild's), with the rate card and plans the CLI prices with. */
export interface Settings extends SystemAddresses {
  rateCard: RateCard;
  engine: EngineConfig;
}

export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const rateCardPath = env.CF_RATE_CARD ?? repoFile("deploy/config/rate-card.json");
  const plansPath = env.CF_PLANS ?? repoFile("deploy/config/plans.json");
  const rateCard = parseRateCard(JSON.parse(readFileSync(rateCardPath, "utf8")), rateCardPath);
  const plans = parsePlans(JSON.parse(readFileSync(plansPath, "utf8")), plansPath);
  return {
    brokers: (env.KAFKA_BROKERS ?? `127.0.0.1:${env.CF_KAFKA_PORT ?? 19092}`).split(","),
    schemaRegistryUrl:
      env.SCHEMA_REGISTRY_URL ??
      `http://127.0.0.1:${env.CF_REGISTRY_PORT ?? 18081}/apis/ccompat/v7`,
    ...(parseClusterNodes(env.REDIS_CLUSTER_NODES) === undefined
      ? { redisUrl: env.REDIS_URL ?? `redis://127.0.0.1:${env.CF_REDIS_PORT ?? 16379}` }
      : { redisClusterNodes: parseClusterNodes(env.REDIS_CLUSTER_NODES) }),
    clickhouseUrl: env.CLICKHOUSE_URL ?? `http://127.0.0.1:${env.CF_CLICKHOUSE_PORT ?? 18123}`,
    database: env.CF_CLICKHOUSE_DATABASE ?? "creditflow",
    topics: topicNames(env.CF_TOPIC_PREFIX ?? "creditflow"),
    keyPrefix: env.CF_KEY_PREFIX ?? "cf:",
    rateCard,
    engine: makeConfig(rateCard, plans),
  };
}
