// Goal: a unit slowed down by a loaded machine costs the consumer neither its group membership
// nor a unit done twice. Against the real Kafka (session timeout 6 s), a consumer's first unit
// stops for 9 s between its write and its relay:
// - alone: heartbeats go on meanwhile, so the unit commits and the process stays in the group it
//   joined once. Without them the session expires, the commit is refused, the process rejoins and
//   does the unit again (the 10-minute chaos run's endless rebalance loop);
// - while a second consumer joins: the rebalance waits for the slow member to finish its unit
//   (rebalanceTimeoutMs), which commits and rejoins. With the rebalance timeout at the 6 s session,
//   the slow member is dropped, its commit refused, and the newcomer does the unit again (two
//   chaos consumers dropped each other in turn that way for minutes).
// Every event is applied once; a unit done again shows as records skipped (offsets at or below
// the member's stored offset).

import type { RunningConsumer } from "@creditflow/consumer";
import type { TopicNames } from "@creditflow/contracts";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { fixture } from "../support/fixture.ts";
import { usageInput } from "../support/inputs.ts";
import { waitFor } from "../support/wait.ts";

const fx = fixture(import.meta.url);
const { iso } = fx;
const EVENTS = 30;
const running: RunningConsumer[] = [];

afterEach(async () => {
  for (const c of running.splice(0)) await c.stop();
});

/** A one-partition topic pair with EVENTS usage events on it. */
async function filledTopics(name: string) {
  const topics = await fx.topics(name, { partitions: 1 });
  const producer = await fx.producer({ service: "slow-unit-test", topics });
  const sends = [];
  for (let n = 0; n < EVENTS; n++) {
    const user = `su${n % 3}`;
    sends.push(producer.recordUsage(usageInput(`${name}-${n}`, user)));
  }
  await Promise.all(sends);
  await producer.close();
  return topics;
}

/** A consumer whose log lines are kept (parsed) for the test to read. */
async function consumer(
  topics: TopicNames,
  groupId: string,
  name: string,
  extra: { faultPause?: { unit: number; ms: number } } = {},
) {
  const said: { msg: string }[] = [];
  const logger = pino(
    { level: "info" },
    {
      write(line: string) {
        said.push(JSON.parse(line) as { msg: string });
      },
    },
  );
  const c = await fx.startConsumer({
    topics,
    keyPrefix: `${iso.keyPrefix}${name}:`,
    groupId,
    awaitJoin: false,
    clientId: `slow-unit-${name}-${iso.id}`,
    sweeper: false,
    logger,
    ...extra,
  });
  running.push(c);
  return { c, said, count: (msg: string) => said.filter((l) => l.msg === msg).length };
}

/** A consumer on topics and a group of its own (`name`) whose first unit pauses 9 s after its write. */
async function slowConsumer(name: string) {
  const topics = await filledTopics(name);
  const groupId = iso.group(name);
  const slow = await consumer(topics, groupId, name, { faultPause: { unit: 1, ms: 9_000 } });
  return { topics, groupId, slow };
}

/**
 * Every event applied once over the consumers' metrics: a unit done again would count its records
 * as skipped (offsets at or below the stored ones) or duplicates.
 */
async function expectAppliedOnce(consumers: RunningConsumer[]): Promise<void> {
  const counted = new Map<string, number>();
  for (const c of consumers) {
    for (const v of (await c.metrics.records.get()).values) {
      const result = String(v.labels.result);
      counted.set(result, (counted.get(result) ?? 0) + v.value);
    }
  }
  expect(counted.get("applied")).toBe(EVENTS);
  expect(counted.get("skipped") ?? 0).toBe(0);
  expect(counted.get("duplicate") ?? 0).toBe(0);
}

describe("a slow unit", () => {
  it("keeps the membership through a unit longer than the session timeout", {
    timeout: 90_000,
  }, async () => {
    const { topics, groupId, slow } = await slowConsumer("alone");
    await fx.caughtUp([topics.usage], groupId, 60_000);
    expect(slow.count("fault injection: pause")).toBe(1);
    expect(slow.count("joined group")).toBe(1);
    expect(slow.count("consumer crashed")).toBe(0);
    await expectAppliedOnce([slow.c]);
  });

  it("finishes and commits the unit when another consumer joins in the middle of it", {
    timeout: 120_000,
  }, async () => {
    const { topics, groupId, slow } = await slowConsumer("joined");
    await waitFor(
      "the slow unit's pause",
      async () => slow.count("fault injection: pause") === 1,
      30_000,
    );
    const other = await consumer(topics, groupId, "joined");
    await fx.caughtUp([topics.usage], groupId, 60_000);
    // Both in the group in the end (the slow one rejoined once, after its unit).
    await waitFor("the slow member's rejoin", async () => slow.count("joined group") === 2, 30_000);
    expect(other.count("joined group")).toBe(1);
    await expectAppliedOnce([slow.c, other.c]);
  });
});
