// Goal: a unit slowed down by a loaded machine does not cost the consumer its group membership.
// Against the real Kafka (session timeout 6 s): the consumer's first unit stops for 9 s between
// its write and its relay. Heartbeats go on meanwhile, so the unit commits, the process stays in
// the group it joined once, and every event is applied once. Without them the session expires,
// the unit's commit is refused, the process rejoins and the unit is done again (the 10-minute
// chaos run's endless rebalance loop).

import { topicNames } from "@creditflow/contracts";
import { CreditProducer, connectKafka, ensureTopics } from "@creditflow/producer";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import {
  loadConfig,
  startTestConsumer,
  waitCaughtUp,
} from "../../services/consumer/testing/harness.ts";
import { isolation, stack } from "../support/stack.ts";

const iso = isolation(import.meta.url);
const urls = stack();
const topics = topicNames(`t_${iso.id}`);
const config = loadConfig();
const conn = connectKafka(urls.kafkaBrokers, `test-${iso.id}`);

describe("a slow unit", () => {
  it("keeps the membership through a unit longer than the session timeout", {
    timeout: 90_000,
  }, async () => {
    await ensureTopics(conn, [topics.usage, topics.commands], 1);
    const producer = await CreditProducer.create({
      brokers: urls.kafkaBrokers,
      schemaRegistryUrl: urls.schemaRegistryUrl,
      service: "slow-unit-test",
      rateCard: config.rateCard,
      topics,
      compression: "none",
    });
    const users = ["su0", "su1", "su2"];
    const sends = [];
    for (let n = 0; n < 30; n++) {
      const user = users[n % users.length]!;
      sends.push(
        producer.recordUsage({
          eventId: `su-${n}`,
          userId: user,
          taskId: `${user}-t`,
          feature: "chat",
          model: "kimi-k2",
          inputTokens: 1_000,
          outputTokens: 100,
          occurredAt: Date.now(),
        }),
      );
    }
    await Promise.all(sends);
    await producer.close();

    const lines: string[] = [];
    const logger = pino(
      { level: "info" },
      {
        write(line: string) {
          lines.push(line);
        },
      },
    );
    const groupId = iso.group("slow");
    const consumer = await startTestConsumer(urls, {
      topics,
      keyPrefix: iso.keyPrefix,
      groupId,
      config,
      clientId: `slow-unit-${iso.id}`,
      sweeper: false,
      logger,
      faultPause: { unit: 1, ms: 9_000 },
    });
    try {
      await waitCaughtUp(conn, groupId, [topics.usage], 60_000);
      const said = lines.map((l) => JSON.parse(l) as { msg: string });
      expect(said.filter((l) => l.msg === "fault injection: pause")).toHaveLength(1);
      expect(said.filter((l) => l.msg === "joined group")).toHaveLength(1);
      expect(said.filter((l) => l.msg === "consumer crashed")).toHaveLength(0);
      // Done once: a unit done again by a rejoined process finds its records applied already.
      const counted = new Map<string, number>();
      for (const v of (await consumer.metrics.records.get()).values) {
        const result = String(v.labels.result);
        counted.set(result, (counted.get(result) ?? 0) + v.value);
      }
      expect(counted.get("applied")).toBe(30);
      expect(counted.get("duplicate") ?? 0).toBe(0);
    } finally {
      await consumer.stop();
    }
  });
});
