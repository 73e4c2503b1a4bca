// Runnable entry of the HTTP ingest: reads Kafka, registry, port, topic prefix, tokens, the
// rate card and the plans (CF_PLANS: the duplicate horizon, the same as the consumer's) from the
// environment, listens until SIGTERM/SIGINT, then drains and stops.
//   CF_INGEST_TOKENS=agent:0123456789abcdef node services/ingest/src/main.ts
import { readFileSync } from "node:fs";
import { topicNames } from "@creditflow/contracts";
import { makeConfig, parsePlans, parseRateCard } from "@creditflow/engine";
import { intFromEnv, stopOnSignals } from "@creditflow/http-service";
import { pino } from "pino";
import { buildIngest, type IngestLimits, IngestOptionError, parseTokens } from "./index.ts";

const log = pino({ level: process.env.CF_INGEST_LOG_LEVEL ?? "info" });
const repoRoot = new URL("../../../", import.meta.url);

function readJson(path: string): unknown {
  return JSON.parse(readFileSync(path, "utf8"));
}

try {
  const rateCardPath =
    process.env.CF_RATE_CARD ?? new URL("deploy/config/rate-card.json", repoRoot).pathname;
  const plansPath = process.env.CF_PLANS ?? new URL("deploy/config/plans.json", repoRoot).pathname;
  const rateCard = parseRateCard(readJson(rateCardPath), rateCardPath);
  // The same horizon as the consumer's: plans.json's dedupeHorizonMs or its default.
  const { dedupeHorizonMs } = makeConfig(rateCard, parsePlans(readJson(plansPath), plansPath));
  const limits: Partial<IngestLimits> = {};
  const maxBatchEvents = intFromEnv("CF_INGEST_MAX_BATCH_EVENTS");
  const maxBodyBytes = intFromEnv("CF_INGEST_MAX_BODY_BYTES");
  if (maxBatchEvents !== undefined) limits.maxBatchEvents = maxBatchEvents;
  if (maxBodyBytes !== undefined) limits.maxBodyBytes = maxBodyBytes;
  const port = intFromEnv("CF_INGEST_PORT") ?? 18090;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new IngestOptionError(
      "CF_INGEST_PORT",
      `a port number (got ${process.env.CF_INGEST_PORT})`,
    );
  }
  const ingest = await buildIngest({
    brokers: (process.env.KAFKA_BROKERS ?? "127.0.0.1:19092").split(","),
    schemaRegistryUrl: process.env.SCHEMA_REGISTRY_URL ?? "http://127.0.0.1:18081/apis/ccompat/v7",
    rateCard,
    tokens: parseTokens(process.env.CF_INGEST_TOKENS),
    topics: topicNames(process.env.CF_TOPIC_PREFIX ?? "creditflow"),
    limits,
    dedupeHorizonMs,
    logger: log,
  });
  await ingest.app.listen({ port, host: process.env.CF_INGEST_HOST ?? "127.0.0.1" });
  stopOnSignals(log, () => ingest.close());
} catch (error) {
  log.fatal({ err: error }, "ingest did not start");
  process.exit(1);
}
