// Goal: a user's records land on the same partition whichever of our Kafka clients wrote them:
// the producer library (@platformatic/kafka) and kafkajs (the consumer's producer, tools)
// agree with the Java client's partitioner for every key. And a group error that kafkajs's
// retries wrapped is found again, so the consumers can hand kafkajs the error it rejoins on.

import {
  KafkaJSConnectionError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSProtocolError,
  Partitioners,
} from "kafkajs";
import { describe, expect, it } from "vitest";
import { keyPartitioner, rejoinErrorOf } from "./kafka.ts";

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

describe("rejoinErrorOf", () => {
  const protocolError = (type: string, code: number) =>
    new KafkaJSProtocolError(
      Object.assign(new Error(`broker said ${type}`), { type, code, retriable: true }),
    );

  it("finds the group error under kafkajs's retries-exceeded wrapper and our own", () => {
    const notCoordinator = protocolError("NOT_COORDINATOR_FOR_GROUP", 16);
    const wrapped = new KafkaJSNumberOfRetriesExceeded(notCoordinator, {
      retryCount: 5,
      retryTime: 9_000,
    });
    expect((wrapped as { type?: string }).type).toBeUndefined();
    expect(rejoinErrorOf(wrapped)).toBe(notCoordinator);
    const ours = new Error("commit usage[3]", { cause: wrapped });
    expect(rejoinErrorOf(ours)).toBe(notCoordinator);
    for (const [type, code] of [
      ["REBALANCE_IN_PROGRESS", 27],
      ["ILLEGAL_GENERATION", 22],
      ["UNKNOWN_MEMBER_ID", 25],
    ] as const) {
      const e = protocolError(type, code);
      expect(rejoinErrorOf(e)).toBe(e);
    }
  });

  it("finds nothing in other errors", () => {
    expect(rejoinErrorOf(protocolError("TOPIC_AUTHORIZATION_FAILED", 29))).toBeNull();
    expect(rejoinErrorOf(new KafkaJSConnectionError("connect ECONNREFUSED"))).toBeNull();
    expect(rejoinErrorOf(new Error("redis down"))).toBeNull();
    expect(rejoinErrorOf(null)).toBeNull();
    expect(rejoinErrorOf("text")).toBeNull();
  });
});
