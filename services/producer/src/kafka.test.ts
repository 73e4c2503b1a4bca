// Goal: a user's records land on the same partition whichever of our Kafka clients wrote them:
// the producer library (@platformatic/kafka) and kafkajs (the consumer's producer, tools)
// agree with the Java client's partitioner for every key.

import { Partitioners } from "kafkajs";
import { describe, expect, it } from "vitest";
import { keyPartitioner } from "./kafka.ts";

const kafkajsPartitionOf = (key: string, partitions: number) =>
  Partitioners.DefaultPartitioner()({
    topic: "t",
    partitionMetadata: Array.from({ length: partitions }, (_, partitionId) => ({
      partitionId,
      leader: 0,
      replicas: [0],
      isr: [0],
      partitionErrorCode: 0,
    })),
    message: { key, value: null },
  });

/** What @platformatic/kafka sends to: the partitioner's answer modulo the partition count. */
const libraryPartitionOf = (key: string, partitions: number) =>
  keyPartitioner({ topic: "t" }, Buffer.from(key)) % partitions;

describe("keyPartitioner", () => {
  it("puts every key on the partition kafkajs and the Java client choose", () => {
    const keys = [
      ...Array.from({ length: 5_000 }, (_, i) => `user-${i}`),
      ...Array.from({ length: 1_000 }, (_, i) => `b1-u${i * 7919}`),
      "a",
      "x".repeat(128),
      "user.with:colons-and_dots",
      "grüße-ユーザー",
    ];
    for (const partitions of [1, 3, 6, 7, 12, 64]) {
      const differ = keys.filter(
        (k) => libraryPartitionOf(k, partitions) !== kafkajsPartitionOf(k, partitions),
      );
      expect(differ).toEqual([]);
    }
    // The keys spread: with 6 partitions every partition gets some of the users.
    expect(new Set(keys.map((k) => libraryPartitionOf(k, 6))).size).toBe(6);
  });
});
