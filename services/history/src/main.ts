// Runnable history sink: reads its settings from the environment, migrates ClickHouse, sinks
// the ledger, usage, commands and dead-letter topics until SIGTERM, then flushes and commits.
import { readFileSync } from "node:fs";
import { topicNames } from "@creditflow/contracts";
import { parseRateCard } from "@creditflow/engine";
import { pino } from "pino";
import { startSink } from "./sink.ts";

const log = pino({ name: "history-sink", level: process.env.CF_LOG_LEVEL ?? "info" });
const env = (name: string, fallback?: string): string => {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === "") {
    log.fatal(`${name} is required`);
    process.exit(2);
  }
  return v;
};

const rateCardPath = env(
  "CF_RATE_CARD",
  new URL("../../../deploy/config/rate-card.json", import.meta.url).pathname,
);
const sink = await startSink({
  brokers: env("KAFKA_BROKERS").split(","),
  schemaRegistryUrl: env("SCHEMA_REGISTRY_URL"),
  clickhouseUrl: env("CLICKHOUSE_URL"),
  database: env("CF_CLICKHOUSE_DATABASE", "creditflow"),
  topics: topicNames(env("CF_TOPIC_PREFIX", "creditflow")),
  groupId: env("CF_SINK_GROUP", "creditflow-history"),
  rateCard: parseRateCard(JSON.parse(readFileSync(rateCardPath, "utf8")), rateCardPath),
  logger: log,
  limits: {
    ...(process.env.CF_SINK_MAX_BATCH_ROWS
      ? { maxBatchRows: Number(process.env.CF_SINK_MAX_BATCH_ROWS) }
      : {}),
    ...(process.env.CF_SINK_MAX_BATCH_AGE_MS
      ? { maxBatchAgeMs: Number(process.env.CF_SINK_MAX_BATCH_AGE_MS) }
      : {}),
  },
});
log.info("history sink running");

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, stats: sink.stats }, "stopping: flushing and committing");
    sink.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, "unclean stop");
        process.exit(1);
      },
    );
  });
}
