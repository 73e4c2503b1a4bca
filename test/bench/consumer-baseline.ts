// The consumer bench's baseline, as a process of its own (consumer.bench.ts starts it the way it
// starts the consumer, so both begin as fresh processes: neither inherits code the other or the
// bench warmed up). A consumer of the usage topic that decodes each record and writes one Redis
// key per record, pipelined per batch: no engine, no idempotency, no ledger. Timed from its
// group join (so its first fetch counts) to the write that holds the last of CF_BENCH_EVENTS
// records; prints one JSON line: seconds, CPU seconds in that time, the first batch's delay.
// Environment: KAFKA_BROKERS, SCHEMA_REGISTRY_URL, REDIS_URL, CF_TOPIC_PREFIX, CF_KEY_PREFIX,
// CF_CONSUMER_GROUP, CF_BENCH_EVENTS.

import { topicNames, type UsageEventRecord } from "@creditflow/contracts";
import { AvroCodec, connectKafka } from "@creditflow/kafka";
import { Redis } from "ioredis";

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === "") throw new Error(`${name}: must be set`);
  return value;
}

const events = Number(env("CF_BENCH_EVENTS"));
if (!Number.isInteger(events) || events < 1) throw new Error("CF_BENCH_EVENTS: a whole number");
const topics = topicNames(env("CF_TOPIC_PREFIX"));
const keyPrefix = env("CF_KEY_PREFIX");
const conn = connectKafka(env("KAFKA_BROKERS").split(","), `bench-baseline-${process.pid}`);
const codec = new AvroCodec(env("SCHEMA_REGISTRY_URL"));
const writer = new Redis(env("REDIS_URL"));
const consumer = conn.kafka.consumer({
  groupId: env("CF_CONSUMER_GROUP"),
  maxBytesPerPartition: 1_048_576,
  maxWaitTimeInMs: 100,
});

let seen = 0;
let started = 0;
let firstBatch = 0;
let cpuAtStart = process.cpuUsage();
consumer.on(consumer.events.GROUP_JOIN, () => {
  if (started !== 0) return;
  started = performance.now();
  cpuAtStart = process.cpuUsage();
});

await consumer.connect();
await consumer.subscribe({ topics: [topics.usage], fromBeginning: true });
const ended = await new Promise<number>((resolve) => {
  void consumer.run({
    partitionsConsumedConcurrently: 4,
    eachBatch: async ({ batch }) => {
      firstBatch ||= performance.now();
      const pipeline = writer.pipeline();
      for (const m of batch.messages) {
        const d = await codec.decode("usage", m.value);
        if (!d.ok) continue;
        const r = d.value as UsageEventRecord;
        pipeline.set(`${keyPrefix}base:{${r.userId}}:${r.eventId}`, r.inputTokens + r.outputTokens);
      }
      await pipeline.exec();
      seen += batch.messages.length;
      if (seen >= events) resolve(performance.now());
    },
  });
});
const cpu = process.cpuUsage(cpuAtStart);
console.log(
  JSON.stringify({
    seconds: (ended - started) / 1000,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    firstBatchSeconds: (firstBatch - started) / 1000,
  }),
);
await consumer.disconnect();
writer.disconnect();
