// Reading topics from their start up to a given offset of each partition with a throwaway
// consumer group: the rebuild's read of its source topics, the chaos check's read of whole topics.
import type { ConsumerConfig, KafkaMessage } from "kafkajs";
import type { KafkaConnection } from "./kafka.ts";

export type { KafkaMessage } from "kafkajs";

export interface ReadUpToOptions {
  /**
   * The last offset to read of each partition, by topic, then partition. Only these topics are
   * read, and only these partitions are waited for.
   */
  lastOffsets: ReadonlyMap<string, ReadonlyMap<number, bigint>>;
  /** The throwaway group: its id and settings (session timeout, fetch sizes). */
  consumer: ConsumerConfig;
  /** The group commits what it read, so a rejoin fetches from there (default false: from the start). */
  autoCommit?: boolean;
  /** Partitions handed on at once (default 1). */
  partitionsConsumedConcurrently?: number;
  /** Records handed on at once at most, a heartbeat between (default: all of a fetch). */
  chunk?: number;
  timeoutMs: number;
  /** The error the read fails with when it is not done within timeoutMs. */
  timedOut: () => Error;
  /** Takes a partition's records in offset order, each once; a throw fails the read with it. */
  onRecords: (topic: string, partition: number, messages: KafkaMessage[]) => Promise<void> | void;
}

const partitionKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

/**
 * Reads `lastOffsets`' topics from their start until every partition listed is read up to its
 * offset, handing each record at or below it to `onRecords` once: a rejoin of the group, which
 * fetches again from its last commit (or the start), skips what was already handed on.
 */
export async function readUpTo(conn: KafkaConnection, o: ReadUpToOptions): Promise<void> {
  /** Per partition still to read, its last offset. */
  const pending = new Map<string, bigint>();
  for (const [topic, partitions] of o.lastOffsets) {
    for (const [partition, last] of partitions) pending.set(partitionKey(topic, partition), last);
  }
  if (pending.size === 0) return;
  /** Per partition, the highest offset handed on. */
  const taken = new Map<string, bigint>();
  const consumer = conn.kafka.consumer(o.consumer);
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [...o.lastOffsets.keys()], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(o.timedOut()), o.timeoutMs);
      consumer
        .run({
          autoCommit: o.autoCommit ?? false,
          partitionsConsumedConcurrently: o.partitionsConsumedConcurrently ?? 1,
          eachBatch: async ({ batch, heartbeat }) => {
            const key = partitionKey(batch.topic, batch.partition);
            const last = pending.get(key);
            if (last === undefined) return;
            const after = taken.get(key) ?? -1n;
            const fresh = batch.messages.filter((m) => {
              const offset = BigInt(m.offset);
              return offset > after && offset <= last;
            });
            const chunk = o.chunk ?? Math.max(1, fresh.length);
            for (let i = 0; i < fresh.length; i += chunk) {
              const part = fresh.slice(i, i + chunk);
              try {
                await o.onRecords(batch.topic, batch.partition, part);
              } catch (error) {
                clearTimeout(timer);
                reject(error);
                return;
              }
              taken.set(key, BigInt(part.at(-1)!.offset));
              await heartbeat();
            }
            // lastOffset, not the last message: a batch may end on a record kafkajs does not yield.
            if (BigInt(batch.lastOffset()) >= last) pending.delete(key);
            if (pending.size === 0) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
}
