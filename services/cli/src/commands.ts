// The CLI's commands that talk to the system: credit commands to Kafka (never Redis), a
// member's balance read from Redis through the engine, and a live tail of the ledger.
import { randomUUID } from "node:crypto";
import type { LedgerEntryRecord } from "@creditflow/contracts";
import { balanceView, type CreditCommand } from "@creditflow/engine";
import { AvroCodec, connectKafka } from "@creditflow/kafka";
import { connectRedis, keySpace, MemberReader } from "@creditflow/member-store";
import { CreditProducer } from "@creditflow/producer";
import { credits, isoTime } from "./format.ts";
import type { Settings } from "./settings.ts";

/** Send one command and wait for Kafka's acknowledgement; prints the id to follow it by. */
export async function sendCommand(
  settings: Settings,
  command: CreditCommand,
  campaign: string | null = null,
) {
  const producer = await CreditProducer.create({
    brokers: settings.brokers,
    schemaRegistryUrl: settings.schemaRegistryUrl,
    service: "creditflow-cli",
    rateCard: settings.rateCard,
    topics: settings.topics,
  });
  try {
    await producer.sendCommand(command, `cli:${process.env.USER ?? "operator"}`, campaign);
    console.log(
      `accepted ${command.type} ${command.id} for ${command.userId} (applied by the consumer)`,
    );
  } finally {
    await producer.close();
  }
}

export const newCommandId = (kind: string) => `cli-${kind}-${randomUUID()}`;

export async function printBalance(
  settings: Settings,
  userId: string,
  asJson: boolean,
): Promise<number> {
  const redis = connectRedis(settings, { lazyConnect: true, maxRetriesPerRequest: 2 });
  await redis.connect();
  try {
    const stored = await new MemberReader(redis, keySpace(settings.keyPrefix)).state(userId);
    if (stored === null) {
      console.error(`no credit state for member "${userId}"`);
      return 1;
    }
    const view = balanceView(stored.state, { config: settings.engine, nowMs: Date.now() });
    if (asJson) {
      console.log(JSON.stringify(view, null, 2));
      return 0;
    }
    const bar = "#".repeat(Math.round(view.percent / 5)).padEnd(20, ".");
    console.log(`member      ${userId} (${view.tierId}, ${view.billing})`);
    console.log(
      `balance     [${bar}] ${view.percent}%  ${credits(view.remainingMicros)} of ${credits(view.capacityMicros)} credits${view.lowCredit ? "  LOW" : ""}`,
    );
    console.log(
      `by class    bonus ${credits(view.remainingByClass.bonusMicros)}, subscription ${credits(view.remainingByClass.subscriptionMicros)}`,
    );
    for (const g of view.bonusGrants) {
      console.log(
        `bonus       ${g.grantId} (${g.source}) ${credits(g.remainingMicros)}/${credits(g.amountMicros)} expires ${isoTime(g.expiresAtMs)}`,
      );
    }
    console.log(`refresh     ${isoTime(view.nextRefreshAtMs)}`);
    for (const [name, w] of [
      ["5h window", view.window5h],
      ["7d window", view.window7d],
    ] as const) {
      if (w)
        console.log(
          `${name.padEnd(11)} ${credits(w.usedMicros)}/${credits(w.capMicros)} resets ${isoTime(w.resetAtMs)}`,
        );
    }
    console.log(`as of       ${isoTime(view.asOfMs)}`);
    return 0;
  } finally {
    redis.disconnect();
  }
}

/** Print the member's ledger entries as they arrive (from now on) until interrupted. */
export async function tailLedger(
  settings: Settings,
  userId: string,
  fromBeginning: boolean,
): Promise<void> {
  const conn = connectKafka(settings.brokers, "creditflow-cli-tail");
  const codec = new AvroCodec(settings.schemaRegistryUrl);
  const consumer = conn.kafka.consumer({
    groupId: `creditflow-cli-tail-${randomUUID()}`,
    maxWaitTimeInMs: 200,
  });
  await consumer.connect();
  await consumer.subscribe({ topic: settings.topics.ledger, fromBeginning });
  const stop = async () => {
    await consumer.disconnect();
    process.exit(0);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  console.error(`tailing ${settings.topics.ledger} for ${userId} (Ctrl-C to stop)`);
  await consumer.run({
    eachMessage: async ({ message }) => {
      if (message.key?.toString() !== userId) return;
      const decoded = await codec.decode("ledger", message.value);
      if (!decoded.ok) return;
      const e = decoded.value as LedgerEntryRecord;
      console.log(
        [
          isoTime(e.eventAt),
          e.kind.padEnd(9),
          credits(e.amountMicros).padStart(12),
          `balance ${credits(e.balanceAfterMicros)}`,
          e.feature ?? "",
          e.taskId ?? "",
          e.entryId,
        ].join("  "),
      );
    },
  });
}
