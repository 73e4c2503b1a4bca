// Goal: prove the four services of the stack work together end to end from Node: an Avro
// schema registered in the registry, keyed records in the Confluent wire format through
// Kafka and a consumer group, Redis read and write, ClickHouse insert and query.

import { waitForLeaders } from "@creditflow/kafka";
import { SchemaRegistry, SchemaType } from "@kafkajs/confluent-schema-registry";
import { Redis } from "ioredis";
import { Kafka, logLevel } from "kafkajs";
import { afterAll, describe, expect, it } from "vitest";
import { fixture } from "../support/fixture.ts";

const fx = fixture(import.meta.url);
const { iso, urls } = fx;

describe("smoke: all four services", () => {
  const redis = new Redis(urls.redisUrl, { lazyConnect: true });
  const clickhouse = fx.clickhouse;
  afterAll(() => {
    redis.disconnect();
  });

  it("registers a schema, produces keyed Avro records and consumes them in a group", async () => {
    const registry = new SchemaRegistry({ host: urls.schemaRegistryUrl });
    const { id } = await registry.register(
      {
        type: SchemaType.AVRO,
        schema: JSON.stringify({
          type: "record",
          name: "Smoke",
          namespace: "creditflow.test",
          fields: [
            { name: "userId", type: "string" },
            { name: "tokens", type: "long" },
          ],
        }),
      },
      { subject: `${iso.topic("smoke")}-value` },
    );
    expect(id).toBeGreaterThan(0);

    const kafka = new Kafka({ brokers: urls.kafkaBrokers, logLevel: logLevel.NOTHING });
    const topic = iso.topic("smoke");
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: false });
    await waitForLeaders(admin, [topic]);
    await admin.disconnect();

    const producer = kafka.producer({ idempotent: true });
    await producer.connect();
    const sent = [
      { userId: "u1", tokens: 10 },
      { userId: "u2", tokens: 20 },
      { userId: "u1", tokens: 30 },
    ];
    const messages = await Promise.all(
      sent.map(async (v) => ({ key: v.userId, value: await registry.encode(id, v) })),
    );
    expect(messages[0]!.value[0]).toBe(0); // Confluent magic byte
    expect(messages[0]!.value.readInt32BE(1)).toBe(id);
    await producer.send({ topic, acks: -1, messages });
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: iso.group("smoke") });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const received: Array<{ key: string; value: unknown; partition: number }> = [];
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          eachMessage: async ({ message, partition }) => {
            received.push({
              key: message.key!.toString(),
              value: await registry.decode(message.value!),
              partition,
            });
            if (received.length === sent.length) resolve();
          },
        })
        .catch(reject);
    });
    await consumer.disconnect();

    expect(received.map((r) => r.value)).toEqual(expect.arrayContaining(sent));
    // Keyed by user: one user's records land on one partition, in order.
    const u1 = received.filter((r) => r.key === "u1");
    expect(new Set(u1.map((r) => r.partition)).size).toBe(1);
    expect(u1.map((r) => (r.value as { tokens: number }).tokens)).toEqual([10, 30]);
  });

  it("writes and reads Redis on our own instance with AOF on", async () => {
    await redis.connect();
    const key = `${iso.keyPrefix}{u1}:balance`;
    await redis.set(key, "1234");
    expect(await redis.get(key)).toBe("1234");
    expect(await redis.config("GET", "appendonly")).toEqual(["appendonly", "yes"]);
    await redis.del(key);
  });

  it("inserts into and queries ClickHouse through @clickhouse/client", async () => {
    await clickhouse.command({ query: `CREATE DATABASE IF NOT EXISTS ${iso.database}` });
    await clickhouse.command({
      query: `CREATE TABLE ${iso.database}.usage (user String, tokens UInt64) ENGINE = MergeTree ORDER BY user`,
    });
    await clickhouse.insert({
      table: `${iso.database}.usage`,
      values: [
        { user: "u1", tokens: 10 },
        { user: "u2", tokens: 20 },
        { user: "u1", tokens: 30 },
      ],
      format: "JSONEachRow",
    });
    const rs = await clickhouse.query({
      query: `SELECT user, sum(tokens) AS total FROM ${iso.database}.usage WHERE user = {user:String} GROUP BY user`,
      query_params: { user: "u1" },
      format: "JSONEachRow",
    });
    // 64-bit integers are JSON numbers or strings depending on the server's version: compare values.
    const rows = await rs.json<{ user: string; total: number | string }>();
    expect(rows.map((r) => [r.user, Number(r.total)])).toEqual([["u1", 40]]);
  });
});
