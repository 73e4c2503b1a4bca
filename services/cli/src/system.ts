// Getting a fresh system ready and showing it: topics and schemas (init), ClickHouse's schema,
// a few demo members with grants, subscriptions and usage (seed), and member tokens (token).
import { randomUUID } from "node:crypto";
import { DEFAULT_PARTITIONS } from "@creditflow/contracts";
import { MICROS_PER_CREDIT } from "@creditflow/engine";
import { migrate } from "@creditflow/history";
import { AvroCodec, connectKafka, ensureTopics } from "@creditflow/kafka";
import { CreditProducer } from "@creditflow/producer";
import { SignJWT } from "jose";
import type { Settings } from "./settings.ts";

/** Create the topics, register the schemas, migrate ClickHouse. Idempotent. */
export async function initSystem(
  settings: Settings,
  partitions = DEFAULT_PARTITIONS,
): Promise<void> {
  const conn = connectKafka(settings.brokers, "creditflow-cli-init");
  const t = settings.topics;
  await ensureTopics(conn, [t.usage, t.commands, t.ledger, t.deadLetters], partitions);
  await new AvroCodec(settings.schemaRegistryUrl).register(t, ["usage", "command", "ledger"]);
  const applied = await migrate(settings.clickhouseUrl, settings.database);
  console.log(
    `topics ${t.usage}, ${t.commands}, ${t.ledger}, ${t.deadLetters} (${partitions} partitions); schemas registered; ClickHouse ${settings.database}: ${applied.length === 0 ? "up to date" : `applied ${applied.join(", ")}`}`,
  );
}

/** A member token for the balance page and API: HS256, `sub` = the member, expiring. */
export async function memberToken(
  secret: string,
  userId: string,
  ttlSeconds = 7 * 86_400,
): Promise<string> {
  if (secret.length < 32) throw new Error("CF_JWT_SECRET: at least 32 characters");
  return new SignJWT({})
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime(`${ttlSeconds}s`)
    .sign(new TextEncoder().encode(secret));
}

export const DEMO_MEMBERS = ["demo-alice", "demo-bob", "demo-carol"] as const;

/**
 * Seed the demo members through Kafka, as billing and feature services would: Alice on Plus with
 * a promotion, Bob on the free tier with a trial nearly spent, Carol on Pro (annual) with
 * migrated legacy uses; then a few tasks of usage each. Ids are fixed, so seeding twice changes
 * nothing (the consumer applies each id once).
 */
export async function seedDemo(settings: Settings): Promise<void> {
  const producer = await CreditProducer.create({
    brokers: settings.brokers,
    schemaRegistryUrl: settings.schemaRegistryUrl,
    service: "demo-seed",
    rateCard: settings.rateCard,
    topics: settings.topics,
  });
  const now = Date.now();
  const day = 86_400_000;
  const C = MICROS_PER_CREDIT;
  try {
    const commands = [
      {
        type: "subscription_start",
        id: "seed-alice-plus",
        userId: "demo-alice",
        atMs: now,
        tierId: "plus",
        billing: "monthly",
      },
      {
        type: "grant_bonus",
        id: "seed-alice-promo",
        userId: "demo-alice",
        atMs: now,
        source: "promotion",
        amountMicros: 20 * C,
        effectiveFromMs: now,
        expiresAtMs: now + 30 * day,
        priority: 0,
        recurrence: null,
      },
      {
        type: "grant_bonus",
        id: "seed-bob-trial",
        userId: "demo-bob",
        atMs: now,
        source: "trial",
        amountMicros: 10 * C,
        effectiveFromMs: now,
        expiresAtMs: now + 7 * day,
        priority: 0,
        recurrence: null,
      },
      {
        type: "subscription_start",
        id: "seed-carol-pro",
        userId: "demo-carol",
        atMs: now,
        tierId: "pro",
        billing: "annual",
      },
      {
        type: "migrate_legacy",
        id: "seed-carol-migrate",
        userId: "demo-carol",
        atMs: now,
        unusedUses: { agent: 12, ppt: 5 },
      },
    ] as const;
    for (const c of commands) {
      await producer.sendCommand(
        c as never,
        "demo-seed",
        c.type === "grant_bonus" ? "welcome-2026" : null,
      );
    }
    const runId = randomUUID().slice(0, 8);
    const tasks: Array<[string, string, string | null, string, number, number]> = [
      ["demo-alice", "agent", "ppt", "kimi-k2", 30_000, 8_000],
      ["demo-alice", "code", null, "kimi-k2", 20_000, 3_000],
      ["demo-alice", "chat", null, "kimi-k2", 2_000, 500],
      ["demo-bob", "agent", "deep_research", "kimi-k2", 120_000, 25_000],
      ["demo-bob", "chat", null, "kimi-k2", 3_000, 800],
      [
        "demo-carol",
        "image",
        null,
        Object.keys(settings.rateCard.features.image.models)[0]!,
        1_000,
        4_000,
      ],
      ["demo-carol", "code", null, "kimi-k2", 40_000, 6_000],
    ];
    let n = 0;
    for (const [userId, feature, taskKind, model, input, output] of tasks) {
      const taskId = `seed-${runId}-task-${n++}`;
      for (let step = 0; step < 3; step++) {
        await producer.recordUsage({
          eventId: `${taskId}-step-${step}`,
          userId,
          taskId,
          feature,
          taskKind,
          model,
          inputTokens: Math.round(input / 3),
          outputTokens: Math.round(output / 3),
          occurredAt: Date.now(),
        });
      }
    }
    console.log(
      `seeded ${DEMO_MEMBERS.join(", ")}: ${commands.length} commands, ${tasks.length} tasks`,
    );
  } finally {
    await producer.close();
  }
}
