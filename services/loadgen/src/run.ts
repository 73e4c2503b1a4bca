// Runs a load plan against Kafka through the producer library: credit commands first (when
// asked), then usage events paced at the requested rate, with back-pressure from the producer
// (never more than its pending bound outstanding). Reports what was acknowledged and can
// record each accepted event (id, user, cost) and each late duplicate as JSON lines for the
// chaos checker.
import { once } from "node:events";
import { createWriteStream, type WriteStream } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { DEFAULT_PARTITIONS, type TopicNames, topicNames } from "@creditflow/contracts";
import { FEATURES, type Feature, priceUsage, type RateCard } from "@creditflow/engine";
import { connectKafka, ensureTopics } from "@creditflow/kafka";
import { type Acknowledged, CreditProducer, type ProducerLimits } from "@creditflow/producer";
import { Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import {
  DEFAULT_LATE_DUPLICATE_DISTANCE,
  defaultRunId,
  MAX_LATE_DUPLICATE_DISTANCE,
  type PlannedSend,
  planCommands,
  planMembers,
  planUsage,
} from "./generate.ts";

export const LoadSettingsSchema = Type.Object({
  users: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
  ratePerSecond: Type.Number({ exclusiveMinimum: 0, maximum: 200_000 }),
  durationSeconds: Type.Number({ exclusiveMinimum: 0, maximum: 86_400 }),
  seed: Type.Integer({ minimum: 0, maximum: 0xffff_ffff }),
  duplicates: Type.Number({ minimum: 0, maximum: 0.5 }),
  late: Type.Number({ minimum: 0, maximum: 0.5 }),
  lateDuplicates: Type.Number({ minimum: 0, maximum: 1 }),
  lateDuplicateDistance: Type.Integer({ minimum: 1, maximum: MAX_LATE_DUPLICATE_DISTANCE }),
  withGrants: Type.Boolean(),
});

export interface LoadgenOptions {
  brokers: string[];
  schemaRegistryUrl: string;
  rateCard: RateCard;
  topics?: TopicNames;
  users: number;
  ratePerSecond: number;
  durationSeconds: number;
  seed?: number;
  /** Fraction of events sent twice (same id, same content); default 0.01. */
  duplicates?: number;
  /** Fraction of events up to 4 minutes late; default 0.02. */
  late?: number;
  /** Share of the duplicates held for newer events of their member; default 0. */
  lateDuplicates?: number;
  /** Newer events of the same member a late duplicate waits for, at least; default 300. */
  lateDuplicateDistance?: number;
  /** First send grant and subscription commands for the members. */
  withGrants?: boolean;
  /**
   * Write one JSON line per accepted event (id, userId, taskId, feature, costMicros), and one per
   * acknowledged late duplicate (lateDuplicate: true, id, userId, newerOfMember).
   */
  recordPath?: string;
  /** The run's clock origin (events' times derive from it); default now. */
  startMs?: number;
  runId?: string;
  /** Create the usage and commands topics when missing (default true). */
  createTopics?: boolean;
  producerLimits?: Partial<ProducerLimits>;
  compression?: "gzip" | "none";
}

export interface FeatureTally {
  events: number;
  inputTokens: number;
  outputTokens: number;
  costMicros: number;
}

export interface LoadgenReport {
  runId: string;
  seed: number;
  users: number;
  /** Unique usage events acknowledged. */
  events: number;
  /** Extra sends of an already-sent event (same id, same content), acknowledged. */
  duplicates: number;
  /** Of the duplicates, those sent after newer events of their member (lateDuplicates). */
  lateDuplicates: number;
  /** The asked distance: newer events of the same member a late duplicate waits for. */
  lateDuplicateDistance: number;
  /** Late duplicates sent after at least that many newer events of their member. */
  lateDuplicatesAtDistance: number;
  /** The most newer events of its member any late duplicate was sent after. */
  lateDuplicateMaxDistance: number;
  late: number;
  commands: number;
  commandsByType: Record<string, number>;
  perFeature: Record<Feature, FeatureTally>;
  /** Sends Kafka did not acknowledge. */
  failed: number;
  targetRate: number;
  /** Acknowledged usage records (events + duplicates) per second of the usage phase. */
  achievedRate: number;
  elapsedMs: number;
  /** Times the producer made the generator wait for room. */
  waitedForRoom: number;
}

function checkSettings(o: LoadgenOptions) {
  const settings = {
    users: o.users,
    ratePerSecond: o.ratePerSecond,
    durationSeconds: o.durationSeconds,
    seed: o.seed ?? 1,
    duplicates: o.duplicates ?? 0.01,
    late: o.late ?? 0.02,
    lateDuplicates: o.lateDuplicates ?? 0,
    lateDuplicateDistance: o.lateDuplicateDistance ?? DEFAULT_LATE_DUPLICATE_DISTANCE,
    withGrants: o.withGrants ?? false,
  };
  const first = Value.Errors(LoadSettingsSchema, settings).First();
  if (first) {
    const field = first.path.replace(/^\//, "");
    throw new RangeError(`${field}: ${first.message} (got ${JSON.stringify(first.value)})`);
  }
  return settings;
}

/** Run the load and report what was acknowledged. */
export async function runLoadgen(options: LoadgenOptions): Promise<LoadgenReport> {
  const s = checkSettings(options);
  const startMs = options.startMs ?? Date.now();
  const runId = options.runId ?? defaultRunId(s.seed, startMs);
  const topics = options.topics ?? topicNames();
  const events = Math.max(1, Math.round(s.ratePerSecond * s.durationSeconds));
  const members = planMembers({ users: s.users, seed: s.seed, startMs, runId });

  if (options.createTopics ?? true) {
    const conn = connectKafka(options.brokers, "creditflow-loadgen-admin");
    await ensureTopics(conn, [topics.usage, topics.commands], DEFAULT_PARTITIONS);
  }
  const producer = await CreditProducer.create({
    brokers: options.brokers,
    schemaRegistryUrl: options.schemaRegistryUrl,
    service: "loadgen",
    rateCard: options.rateCard,
    topics,
    compression: options.compression,
    limits: options.producerLimits,
    clientId: `creditflow-loadgen-${runId}`,
  });
  const record: WriteStream | null = options.recordPath
    ? createWriteStream(options.recordPath, { flags: "w" })
    : null;

  const perFeature = Object.fromEntries(
    FEATURES.map((f) => [f, { events: 0, inputTokens: 0, outputTokens: 0, costMicros: 0 }]),
  ) as Record<Feature, FeatureTally>;
  const report: LoadgenReport = {
    runId,
    seed: s.seed,
    users: s.users,
    events: 0,
    duplicates: 0,
    lateDuplicates: 0,
    lateDuplicateDistance: s.lateDuplicateDistance,
    lateDuplicatesAtDistance: 0,
    lateDuplicateMaxDistance: 0,
    late: 0,
    commands: 0,
    commandsByType: {},
    perFeature,
    failed: 0,
    targetRate: s.ratePerSecond,
    achievedRate: 0,
    elapsedMs: 0,
    waitedForRoom: 0,
  };

  try {
    if (s.withGrants) {
      const commands = planCommands(members, s.seed, startMs);
      const results = await Promise.allSettled(
        commands.map((c) => producer.sendCommand(c, "loadgen")),
      );
      results.forEach((r, i) => {
        if (r.status === "rejected") {
          report.failed++;
          return;
        }
        const type = commands[i]!.type;
        report.commands++;
        report.commandsByType[type] = (report.commandsByType[type] ?? 0) + 1;
      });
    }

    // Back-pressure: never more outstanding than the producer's pending bound.
    const window = producer.limits.maxPendingRecords;
    let outstanding = 0;
    let wakeSender: (() => void) | null = null;
    const settle = () => {
      outstanding--;
      if (wakeSender !== null && outstanding < window) {
        const wake = wakeSender;
        wakeSender = null;
        wake();
      }
    };
    const onAck = (send: PlannedSend, _ack: Acknowledged) => {
      const { input } = send;
      if (send.duplicate) {
        report.duplicates++;
        if (send.lateDuplicate) {
          report.lateDuplicates++;
          record?.write(
            `${JSON.stringify({ lateDuplicate: true, id: input.eventId, userId: input.userId, newerOfMember: send.newerOfMember })}\n`,
          );
          if (send.newerOfMember >= s.lateDuplicateDistance) report.lateDuplicatesAtDistance++;
          report.lateDuplicateMaxDistance = Math.max(
            report.lateDuplicateMaxDistance,
            send.newerOfMember,
          );
        }
        return;
      }
      const feature = input.feature as Feature;
      const costMicros = priceUsage(options.rateCard, feature, input.model, {
        inputTokens: input.inputTokens,
        outputTokens: input.outputTokens,
        cachedInputTokens: input.cachedInputTokens ?? 0,
      });
      if (costMicros === null) throw new Error("assertion: generated models are on the rate card");
      report.events++;
      if (send.late) report.late++;
      const tally = perFeature[feature];
      tally.events++;
      tally.inputTokens += input.inputTokens;
      tally.outputTokens += input.outputTokens;
      tally.costMicros += costMicros;
      record?.write(
        `${JSON.stringify({ id: input.eventId, userId: input.userId, taskId: input.taskId, feature, costMicros })}\n`,
      );
    };

    const began = performance.now();
    const inFlight = new Set<Promise<void>>();
    for (const send of planUsage({ ...s, events, startMs, runId }, members)) {
      const waitMs = send.offsetMs - (performance.now() - began);
      if (waitMs > 1) await sleep(waitMs);
      while (outstanding >= window) {
        await new Promise<void>((resolve) => {
          wakeSender = resolve;
        });
      }
      outstanding++;
      const p: Promise<void> = producer.recordUsage(send.input).then(
        (ack) => onAck(send, ack),
        () => {
          report.failed++;
        },
      );
      const tracked = p.finally(() => {
        settle();
        inFlight.delete(tracked);
      });
      inFlight.add(tracked);
    }
    await Promise.all(inFlight);
    await producer.flush();
    report.elapsedMs = Math.round(performance.now() - began);
    report.achievedRate = Math.round(
      ((report.events + report.duplicates) * 1000) / Math.max(1, report.elapsedMs),
    );
    report.waitedForRoom = producer.stats.waitedForRoom;
  } finally {
    await producer.close();
    if (record !== null) {
      record.end();
      await once(record, "finish");
    }
  }
  return report;
}

/** The report as a short markdown summary (what the CLI prints). */
export function formatReport(r: LoadgenReport): string {
  const credits = (micros: number) => (micros / 1_000_000).toFixed(2);
  const lines = [
    `run ${r.runId} (seed ${r.seed}, ${r.users} users)`,
    `events ${r.events}  duplicates ${r.duplicates}  late ${r.late}  commands ${r.commands}` +
      `  failed ${r.failed}`,
    `rate: target ${r.targetRate}/s, achieved ${r.achievedRate}/s over ${(r.elapsedMs / 1000).toFixed(1)} s` +
      `  (waited for room ${r.waitedForRoom}x)`,
  ];
  if (r.lateDuplicates > 0) {
    lines.push(
      `late duplicates ${r.lateDuplicates}: ${r.lateDuplicatesAtDistance} after >= ${r.lateDuplicateDistance}` +
        ` newer events of their member, at most ${r.lateDuplicateMaxDistance}`,
    );
  }
  if (r.commands > 0) {
    lines.push(
      `commands: ${Object.entries(r.commandsByType)
        .map(([t, n]) => `${t} ${n}`)
        .join(", ")}`,
    );
  }
  lines.push(
    "",
    "| feature | events | share | input tokens | output tokens | credits | credits/event |",
    "|---|---:|---:|---:|---:|---:|---:|",
  );
  for (const [feature, t] of Object.entries(r.perFeature)) {
    const share = r.events === 0 ? 0 : (100 * t.events) / r.events;
    lines.push(
      `| ${feature} | ${t.events} | ${share.toFixed(1)}% | ${t.inputTokens} | ${t.outputTokens} |` +
        ` ${credits(t.costMicros)} | ${t.events === 0 ? "-" : credits(t.costMicros / t.events)} |`,
    );
  }
  return lines.join("\n");
}
