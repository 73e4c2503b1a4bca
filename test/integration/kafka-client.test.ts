// Goal: show that the chosen Kafka client (kafkajs 2.2.4) does, against the real broker of the
// stack (Kafka 4.x, KRaft), everything creditflow relies on: idempotent produce with acks=all,
// transactions (aborted records invisible to a read_committed consumer), a consumer group that
// rebalances when a member leaves, and offset commit and resume. Each test checks what a user of
// the client would notice: which records arrive, how often, and in which order.

import { waitForLeaders } from "@creditflow/kafka";
import {
  type Admin,
  type Consumer,
  type ConsumerConfig,
  type EachMessagePayload,
  Kafka,
  logLevel,
  Partitioners,
} from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixture } from "../support/fixture.ts";

const { iso, urls } = fixture(import.meta.url);

/** Upper bound for one step of a test (a group join, a read of a known number of records). */
const STEP_TIMEOUT_MS = 30_000;

const kafka = new Kafka({
  clientId: `cf-test-${iso.id}`,
  brokers: urls.kafkaBrokers,
  logLevel: logLevel.NOTHING,
});

const consumerDefaults: Omit<ConsumerConfig, "groupId"> = {
  sessionTimeout: 10_000,
  rebalanceTimeout: 10_000,
  heartbeatInterval: 500,
  maxWaitTimeInMs: 200,
};

let admin: Admin;
const createdTopics: string[] = [];
const openConsumers: Consumer[] = [];

async function createTopic(name: string, numPartitions: number): Promise<string> {
  const topic = iso.topic(name);
  // No replicationFactor: the broker's default (1 on one broker, 3 on three).
  await admin.createTopics({ topics: [{ topic, numPartitions }], waitForLeaders: false });
  // kafkajs' own wait gives up on UNKNOWN_TOPIC_OR_PARTITION from a busy, fresh broker.
  await waitForLeaders(admin, [topic]);
  createdTopics.push(topic);
  return topic;
}

function newConsumer(config: ConsumerConfig): Consumer {
  const consumer = kafka.consumer({ ...consumerDefaults, ...config });
  openConsumers.push(consumer);
  return consumer;
}

/** Resolves when check() holds after a call of poke(); rejects after STEP_TIMEOUT_MS. */
function until(what: string, check: () => boolean): { poke: () => void; done: Promise<void> } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const timer = setTimeout(
    () => reject(new Error(`timed out waiting for ${what}`)),
    STEP_TIMEOUT_MS,
  );
  const poke = (): void => {
    if (check()) {
      clearTimeout(timer);
      resolve();
    }
  };
  return { poke, done };
}

/** Reads a topic from the beginning in a fresh group until `stop` holds; returns the values. */
async function readAll(
  topic: string,
  stop: (values: string[]) => boolean,
  options: { readUncommitted?: boolean } = {},
): Promise<{ values: string[]; offsets: Map<number, string[]> }> {
  const consumer = newConsumer({
    groupId: iso.group(`reader_${Math.random().toString(36).slice(2, 8)}`),
    readUncommitted: options.readUncommitted ?? false,
  });
  const values: string[] = [];
  const offsets = new Map<number, string[]>();
  const wait = until(`records of ${topic}`, () => stop(values));
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }: EachMessagePayload) => {
      values.push(message.value?.toString() ?? "");
      offsets.set(partition, [...(offsets.get(partition) ?? []), message.offset]);
      wait.poke();
    },
  });
  await wait.done;
  await consumer.disconnect();
  return { values, offsets };
}

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
});

afterAll(async () => {
  for (const c of openConsumers) await c.disconnect().catch(() => {});
  if (createdTopics.length > 0) await admin.deleteTopics({ topics: createdTopics }).catch(() => {});
  await admin.disconnect();
});

describe("kafkajs against the stack's Kafka", () => {
  it("produces idempotently with acks=all: every record lands exactly once, in order", async () => {
    const topic = await createTopic("idempotent", 3);
    const producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();

    // kafkajs refuses an idempotent send that does not wait for all in-sync replicas.
    await expect(
      producer.send({ topic, acks: 1, messages: [{ key: "u1", value: "x" }] }),
    ).rejects.toThrow(/idempotent/i);

    const users = ["u1", "u2", "u3", "u4"];
    const sent: string[] = [];
    for (let batch = 0; batch < 10; batch++) {
      const messages = users.map((user) => ({ key: user, value: `${user}:${batch}` }));
      const meta = await producer.send({ topic, acks: -1, messages });
      for (const m of meta) expect(m.errorCode).toBe(0);
      sent.push(...messages.map((m) => m.value));
    }
    await producer.disconnect();

    const { values, offsets } = await readAll(topic, (v) => v.length >= sent.length);
    // Exactly once: the same multiset of values, no duplicates.
    expect([...values].sort()).toEqual([...sent].sort());
    expect(new Set(values).size).toBe(sent.length);
    // In order per user (one user's records share a partition) ...
    for (const user of users) {
      const mine = values.filter((v) => v.startsWith(`${user}:`));
      expect(mine).toEqual([...Array(10).keys()].map((i) => `${user}:${i}`));
    }
    // ... and with no gap in any partition's offsets (no retried duplicate was ever written).
    for (const list of offsets.values()) {
      expect(list.map(Number)).toEqual(list.map((_, i) => i));
    }
  });

  it("commits one transaction and aborts another: read_committed sees only the committed records", async () => {
    const topic = await createTopic("txn", 1);
    const producer = kafka.producer({
      transactionalId: iso.topic("txn-producer"),
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();

    const committed = await producer.transaction();
    await committed.send({
      topic,
      messages: ["c1", "c2", "c3"].map((value) => ({ key: "u1", value })),
    });
    await committed.commit();

    const aborted = await producer.transaction();
    await aborted.send({
      topic,
      messages: ["a1", "a2", "a3"].map((value) => ({ key: "u1", value })),
    });
    await aborted.abort();

    const last = await producer.transaction();
    await last.send({ topic, messages: [{ key: "u1", value: "c4" }] });
    await last.commit();
    await producer.disconnect();

    // One partition: once "c4" arrives, everything written before it has been read (or skipped).
    const readCommitted = await readAll(topic, (v) => v.includes("c4"));
    expect(readCommitted.values).toEqual(["c1", "c2", "c3", "c4"]);

    // The aborted records were written to the log: a read_uncommitted consumer sees them.
    const readUncommitted = await readAll(topic, (v) => v.includes("c4"), {
      readUncommitted: true,
    });
    expect(readUncommitted.values).toEqual(["c1", "c2", "c3", "a1", "a2", "a3", "c4"]);
  });

  it("rebalances a group of two when one member leaves: the other takes every partition, nothing is lost", async () => {
    const topic = await createTopic("group", 4);
    const groupId = iso.group("pair");
    const assignment = new Map<string, number[]>();
    const seen = new Map<string, string[]>();
    const members = ["a", "b"].map((name) => {
      const consumer = newConsumer({ groupId });
      seen.set(name, []);
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        assignment.set(name, [...(e.payload.memberAssignment[topic] ?? [])].sort());
        joined.poke();
        alone.poke();
      });
      return { name, consumer };
    });
    const joined = until("both members assigned", () => {
      const a = assignment.get("a") ?? [];
      const b = assignment.get("b") ?? [];
      return a.length > 0 && b.length > 0 && a.length + b.length === 4;
    });
    let leftB = false;
    const alone = until(
      "member a holding all partitions after b left",
      () => leftB && (assignment.get("a") ?? []).length === 4,
    );

    const consumedAll = new Set<string>();
    let expected = 0;
    const allRead = until(
      "every record consumed",
      () => expected > 0 && consumedAll.size === expected,
    );
    for (const { name, consumer } of members) {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          const v = message.value?.toString() ?? "";
          seen.get(name)!.push(v);
          consumedAll.add(v);
          allRead.poke();
        },
      });
    }
    await joined.done;
    // Two members, disjoint shares that together cover the four partitions.
    const shareA = assignment.get("a")!;
    const shareB = assignment.get("b")!;
    expect([...shareA, ...shareB].sort()).toEqual([0, 1, 2, 3]);

    const producer = kafka.producer({
      idempotent: true,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    const first = [...Array(40).keys()].map((i) => ({ key: `u${i}`, value: `first:${i}` }));
    await producer.send({ topic, acks: -1, messages: first });

    // Wait until both members have read their part of the first batch, then b leaves.
    const bothRead = until("first batch read", () => consumedAll.size === first.length);
    const pokeBoth = setInterval(bothRead.poke, 50);
    await bothRead.done.finally(() => clearInterval(pokeBoth));
    expect(seen.get("a")!.length).toBeGreaterThan(0);
    expect(seen.get("b")!.length).toBeGreaterThan(0);

    await members[1]!.consumer.disconnect();
    leftB = true;
    alone.poke();
    await alone.done;
    expect(assignment.get("a")).toEqual([0, 1, 2, 3]);

    const second = [...Array(40).keys()].map((i) => ({ key: `u${i}`, value: `second:${i}` }));
    await producer.send({ topic, acks: -1, messages: second });
    await producer.disconnect();
    expected = first.length + second.length;
    allRead.poke();
    await allRead.done;

    // After b left, a alone read the whole second batch, from every partition.
    const secondByA = seen.get("a")!.filter((v) => v.startsWith("second:"));
    expect(new Set(secondByA).size).toBe(second.length);
    expect(seen.get("b")!.some((v) => v.startsWith("second:"))).toBe(false);
  });

  it("commits an offset and a new member of the group resumes right after it", async () => {
    const topic = await createTopic("resume", 1);
    const groupId = iso.group("resume");
    const producer = kafka.producer({
      idempotent: true,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    await producer.send({
      topic,
      acks: -1,
      messages: [...Array(10).keys()].map((i) => ({ key: "u1", value: `m${i}` })),
    });

    // First consumer: no auto-commit; processes m0..m5 and commits "next offset to read" = 6.
    const first = newConsumer({ groupId });
    const processed: string[] = [];
    const committedSix = until("offset 6 committed", () => processed.length === 6);
    await first.connect();
    await first.subscribe({ topic, fromBeginning: true });
    await first.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        if (processed.length >= 6) return; // the rest of the fetched batch is left for later
        processed.push(message.value!.toString());
        if (processed.length === 6) {
          await first.commitOffsets([
            { topic, partition, offset: String(Number(message.offset) + 1) },
          ]);
        }
        committedSix.poke();
      },
    });
    await committedSix.done;
    await first.disconnect();
    expect(processed).toEqual(["m0", "m1", "m2", "m3", "m4", "m5"]);

    const [stored] = await admin.fetchOffsets({ groupId, topics: [topic] });
    expect(stored!.partitions).toEqual([expect.objectContaining({ partition: 0, offset: "6" })]);

    // More records while nobody is in the group.
    await producer.send({ topic, acks: -1, messages: [{ key: "u1", value: "m10" }] });
    await producer.disconnect();

    // Second consumer, same group, fromBeginning: the committed offset wins over the reset policy.
    const second = newConsumer({ groupId });
    const resumed: string[] = [];
    const readRest = until("m6..m10", () => resumed.includes("m10"));
    await second.connect();
    await second.subscribe({ topic, fromBeginning: true });
    await second.run({
      eachMessage: async ({ message }) => {
        resumed.push(message.value!.toString());
        readRest.poke();
      },
    });
    await readRest.done;
    await second.disconnect();
    expect(resumed).toEqual(["m6", "m7", "m8", "m9", "m10"]);
  });
});
