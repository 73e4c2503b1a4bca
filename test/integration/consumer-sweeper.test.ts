// Goal: lazy time reaches idle members. A member's bonus that expires while no event arrives is
// forfeited by the deadline sweeper within seconds of its time (after the allowed lateness), and
// the forfeit is recorded once (one entry id, identical copies only) even with two consumers of
// one group sweeping the same deadline index at the same moment.

import type { RunningConsumer } from "@creditflow/consumer";
import type { TopicNames } from "@creditflow/contracts";
import { ledgerBalanceMicros } from "@creditflow/engine";
import type { CreditProducer } from "@creditflow/producer";
import { beforeAll, describe, expect, it } from "vitest";
import { sumMicros } from "../../services/consumer/testing/harness.ts";
import { fixture } from "../support/fixture.ts";
import { bonusGrant, usageInput } from "../support/inputs.ts";

const LATENESS_MS = 1_500;
const fx = fixture(import.meta.url, { plans: { allowedLatenessMs: LATENESS_MS } });

let topics: TopicNames;
let producer: CreditProducer;
const consumers: RunningConsumer[] = [];

beforeAll(async () => {
  topics = await fx.topics();
  producer = await fx.producer();
  for (let i = 0; i < 2; i++) {
    consumers.push(
      await fx.startConsumer({
        clientId: `sweeper-test-${i}`,
        limits: { sweeperIntervalMs: 250 },
        awaitJoin: false,
      }),
    );
  }
});

describe("deadline sweeper", () => {
  it("forfeits an idle member's bonus within seconds of its expiry, recorded once with two consumers", async () => {
    const users = ["sw0", "sw1", "sw2", "sw3", "sw4"];
    const t0 = Date.now();
    const expiresAtMs = t0 + 4_000;
    for (const userId of users) {
      const promo = { id: `${userId}-promo`, userId, amountMicros: 3_000_000, expiresAtMs };
      await producer.sendCommand(
        bonusGrant({ ...promo, atMs: t0, effectiveFromMs: t0 - 1_000 }),
        "test",
      );
      await producer.recordUsage(
        usageInput(`${userId}-e1`, userId, {
          inputTokens: 10_000,
          outputTokens: 1_000,
          occurredAt: t0,
        }),
      );
    }
    await fx.caughtUp([topics.usage, topics.commands]);
    // Before the deadline (expiry + lateness) nothing is forfeited.
    for (const user of users) {
      const m = await fx.member(user);
      const bonus = m.state!.grants.find((g) => g.id.includes("promo") || g.cls === "bonus");
      expect(bonus?.remainingMicros).toBeGreaterThan(0);
    }
    const deadlineMs = expiresAtMs + LATENESS_MS;
    // Both consumers sweep the same due members at the same moment as well.
    await new Promise((r) => setTimeout(r, Math.max(0, deadlineMs - Date.now())));
    await Promise.all(consumers.map((c) => c.sweepOnce()));

    const forfeitedAt = new Map<string, number>();
    while (forfeitedAt.size < users.length && Date.now() < deadlineMs + 10_000) {
      for (const user of users) {
        if (forfeitedAt.has(user)) continue;
        const m = await fx.member(user);
        if (!m.state!.grants.some((g) => g.cls === "bonus" && g.remainingMicros > 0)) {
          forfeitedAt.set(user, Date.now());
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(forfeitedAt.size).toBe(users.length);
    for (const at of forfeitedAt.values()) expect(at - deadlineMs).toBeLessThan(5_000);

    const ledger = await fx.ledger(topics);
    for (const user of users) {
      const entries = ledger.get(user) ?? [];
      const expiries = entries.filter((e) => e.kind === "expire");
      expect(expiries).toHaveLength(1);
      expect(expiries[0]!.amountMicros).toBeLessThan(0);
      // Forfeited only once the allowed lateness had passed.
      expect(expiries[0]!.processedAt).toBeGreaterThanOrEqual(deadlineMs);
      const m = await fx.member(user);
      expect(sumMicros(entries)).toBe(ledgerBalanceMicros(m.state!));
      expect(m.outboxLength).toBe(0);
    }
  });
});
