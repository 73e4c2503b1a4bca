// The exactly-once scenario of the consumer's crash and cluster tests: topics of its own, a
// producer on them, a bonus for the first half of the members (so debits cross from bonus to
// subscription), usage at a steady pace with ~5% of events sent twice (same id, same content),
// every distinct input kept per member, and the check that Redis and the ledger topic end as the
// engine says over those inputs.
import { setTimeout as sleep } from "node:timers/promises";
import type { LedgerEntryRecord, TopicNames } from "@creditflow/contracts";
import { DAY_MS, type EngineInput, ledgerBalanceMicros } from "@creditflow/engine";
import type { Random } from "@creditflow/loadgen";
import type { CreditProducer } from "@creditflow/producer";
import { expect } from "vitest";
import { ledgerByUser, replayMember, sumMicros } from "../../services/consumer/testing/harness.ts";
import type { Fixture } from "./fixture.ts";
import { bonusGrant, remember, usageEvent, usageInput } from "./inputs.ts";

export interface LoadScenario {
  fx: Fixture;
  /** The scenario's name: its topic set is fx.topics(name). */
  name: string;
  topics: TopicNames;
  producer: CreditProducer;
  users: readonly string[];
  /** Every distinct input sent, per user, in send order. */
  sent: Map<string, EngineInput[]>;
}

/** The topics `name` of the fixture, a producer on them, and the first half of `users` granted 2 credits. */
export async function loadScenario(
  fx: Fixture,
  name: string,
  users: readonly string[],
): Promise<LoadScenario> {
  const topics = await fx.topics(name);
  const producer = await fx.producer({ service: `${name}-load`, topics, limits: { lingerMs: 2 } });
  const sc: LoadScenario = { fx, name, topics, producer, users, sent: new Map() };
  const atMs = Date.now() - 60_000;
  for (const userId of users.slice(0, users.length / 2)) {
    const grant = bonusGrant({
      id: `${userId}-bonus`,
      userId,
      amountMicros: 2_000_000,
      atMs,
      expiresAtMs: Date.now() + 30 * DAY_MS,
    });
    await producer.sendCommand(grant, "test");
    remember(sc.sent, grant);
  }
  return sc;
}

export interface SteadyUsage {
  /** Stops sending, waits for the last acks, answers how many distinct events were sent. */
  stop(): Promise<number>;
}

/**
 * Usage at `perSecond` (a tenth of it every 100 ms) until stopped: each event of a member drawn
 * from `random`, ids `<prefix>-<user>-<n>`; ~5% are sent again right after, as a producer retry
 * does (inside the engine's id memory).
 */
export function steadyUsage(
  sc: LoadScenario,
  prefix: string,
  perSecond: number,
  random: Random,
): SteadyUsage {
  const rateCard = sc.fx.config.rateCard;
  let running = true;
  let n = 0;
  const done = (async () => {
    while (running) {
      const acks: Promise<unknown>[] = [];
      for (let i = 0; i < perSecond / 10; i++) {
        const user = sc.users[Math.floor(random() * sc.users.length)]!;
        const input = usageInput(`${prefix}-${user}-${n++}`, user, {
          taskId: `${user}-t${n % 5}`,
          inputTokens: 1000 + Math.floor(random() * 5000),
          outputTokens: 100 + Math.floor(random() * 500),
        });
        remember(sc.sent, usageEvent(input, rateCard));
        acks.push(sc.producer.recordUsage(input));
        if (random() < 0.05) acks.push(sc.producer.recordUsage(input));
      }
      await Promise.all(acks);
      await sleep(100);
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      return n;
    },
  };
}

/**
 * Every member's balance under `keyPrefix` equals the engine's over the distinct inputs sent, its
 * outbox is drained, the ledger topic (deduplicated by id, copies identical) sums to the balance,
 * and each usage event has its one debit in the ledger. Answers the ledger by member.
 */
export async function expectExact(
  sc: LoadScenario,
  keyPrefix: string,
): Promise<Map<string, LedgerEntryRecord[]>> {
  const { fx } = sc;
  const members = await fx.reader(keyPrefix).members(sc.users);
  const raw = await fx.readTopic(sc.topics.ledger, { idleMs: 3_000, timeoutMs: 120_000 });
  const ledger = await ledgerByUser(fx.codec, raw);
  let events = 0;
  for (const user of sc.users) {
    const inputs = sc.sent.get(user) ?? [];
    const expected = replayMember(user, inputs, fx.config, Date.now())!;
    const stored = members.get(user)!;
    expect(stored.state, user).not.toBeNull();
    expect(ledgerBalanceMicros(stored.state!), user).toBe(ledgerBalanceMicros(expected));
    expect(stored.outboxEntries, user).toBe(0);
    const entries = ledger.get(user) ?? [];
    expect(sumMicros(entries), user).toBe(ledgerBalanceMicros(stored.state!));
    const debitCauses = entries
      .filter((e) => e.kind === "debit")
      .map((e) => e.entryId.split("#")[0]);
    const usageIds = inputs.filter((i) => i.type === "usage").map((i) => i.id);
    expect(new Set(debitCauses), user).toEqual(new Set(usageIds));
    events += usageIds.length;
  }
  console.log(
    `exact: ${sc.users.length} members, ${events} distinct usage events, ${raw.length} ledger records read`,
  );
  return ledger;
}
