// The load generator's command line: `npm run loadgen -- --users N --rate R --duration D`.
// Parses and checks the options, runs the load, prints what was sent.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { topicNames } from "@creditflow/contracts";
import { parseRateCard } from "@creditflow/engine";
import { Command, InvalidArgumentError, Option } from "commander";
import { DEFAULT_LATE_DUPLICATE_DISTANCE, formatReport, runLoadgen } from "./index.ts";

const number = (what: string) => (raw: string) => {
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new InvalidArgumentError(`${what}: not a number`);
  return value;
};

/** "30", "30s", "2m", "1h" as seconds. */
const duration = (raw: string) => {
  const match = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(raw.trim());
  if (match === null) throw new InvalidArgumentError("a duration like 30, 30s, 2m or 1h");
  return Number(match[1]) * { s: 1, m: 60, h: 3600 }[(match[2] ?? "s") as "s" | "m" | "h"];
};

const program = new Command("loadgen")
  .description("Send a seeded, realistic mix of usage events (and grants) to creditflow's Kafka")
  .requiredOption("--users <n>", "members taking part", number("users"))
  .requiredOption("--rate <events/s>", "usage events per second", number("rate"))
  .requiredOption("--duration <time>", "how long to send (30, 30s, 2m)", duration)
  .addOption(
    new Option("--brokers <list>", "Kafka brokers, comma-separated")
      .env("KAFKA_BROKERS")
      .default("127.0.0.1:19092"),
  )
  .addOption(
    new Option("--registry <url>", "schema registry (Confluent API)")
      .env("SCHEMA_REGISTRY_URL")
      .default("http://127.0.0.1:18081/apis/ccompat/v7"),
  )
  .addOption(
    new Option("--topic-prefix <prefix>", "topic prefix")
      .env("CF_TOPIC_PREFIX")
      .default("creditflow"),
  )
  .addOption(
    new Option("--rate-card <path>", "rate card JSON")
      .env("CF_RATE_CARD")
      .default("deploy/config/rate-card.json"),
  )
  .option("--seed <n>", "seed: the same seed gives the same run", number("seed"), 1)
  .option("--duplicates <fraction>", "events sent twice (same id)", number("duplicates"), 0.01)
  .option("--late <fraction>", "events up to 4 minutes late", number("late"), 0.02)
  .option(
    "--late-duplicates <fraction>",
    "share of the duplicates sent after hundreds of newer events of their member",
    number("late-duplicates"),
    0,
  )
  .option(
    "--late-duplicate-distance <events>",
    "newer events of the same member a late duplicate waits for, at least",
    number("late-duplicate-distance"),
    DEFAULT_LATE_DUPLICATE_DISTANCE,
  )
  .option("--with-grants", "first send subscriptions and bonus grants for the members", false)
  .option(
    "--record <path>",
    "write accepted events (id, userId, costMicros) and late duplicates as JSON lines",
  )
  .option("--run-id <id>", "prefix of every id (default from seed and start time)")
  .option("--start-ms <ms>", "the run's clock origin (default now)", number("start-ms"))
  .option("--json", "print the report as JSON", false);

// kafkajs 2.2.4 schedules a negative timeout on Node 24 (harmless, known upstream): keep the
// printed report clean of that one warning, show every other.
process.removeAllListeners("warning");
process.on("warning", (w) => {
  if (w.name !== "TimeoutNegativeWarning") console.error(`${w.name}: ${w.message}`);
});

program.parse();
const o = program.opts();

try {
  const rateCardPath = resolve(o.rateCard);
  const rateCard = parseRateCard(JSON.parse(readFileSync(rateCardPath, "utf8")), rateCardPath);
  const report = await runLoadgen({
    brokers: String(o.brokers).split(","),
    schemaRegistryUrl: o.registry,
    rateCard,
    topics: topicNames(o.topicPrefix),
    users: o.users,
    ratePerSecond: o.rate,
    durationSeconds: o.duration,
    seed: o.seed,
    duplicates: o.duplicates,
    late: o.late,
    lateDuplicates: o.lateDuplicates,
    lateDuplicateDistance: o.lateDuplicateDistance,
    withGrants: o.withGrants,
    recordPath: o.record,
    runId: o.runId,
    startMs: o.startMs,
  });
  console.log(o.json ? JSON.stringify(report, null, 2) : formatReport(report));
  process.exit(report.failed > 0 ? 1 : 0);
} catch (error) {
  console.error(`loadgen: ${(error as Error).message}`);
  process.exit(2);
}
