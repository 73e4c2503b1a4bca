// What a test file needs to reach the real stack: the service addresses found by the global
// setup, the Redis to run against (the single Redis, or the Redis Cluster REDIS_CLUSTER_NODES
// names), and names of its own (topics, Redis key prefix, ClickHouse database) so files run in
// parallel without touching each other.
import { randomBytes } from "node:crypto";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import { connectRedis, parseClusterNodes, type RedisClient } from "@creditflow/member-store";
import type { RedisOptions } from "ioredis";
import { inject } from "vitest";

export interface StackUrls {
  /** host:port of each Kafka broker */
  kafkaBrokers: string[];
  /** base URL of the schema registry's Confluent-compatible API (…/apis/ccompat/v7) */
  schemaRegistryUrl: string;
  /** redis://host:port */
  redisUrl: string;
  /** http://host:port of a ClickHouse HTTP interface */
  clickhouseUrl: string;
  /** where the addresses came from: env, testcontainers or local */
  source: "env" | "testcontainers" | "local";
}

declare module "vitest" {
  export interface ProvidedContext {
    stack: StackUrls;
  }
}

export function stack(): StackUrls {
  return inject("stack");
}

/** The start-up nodes of the Redis Cluster the tests run against, when REDIS_CLUSTER_NODES is set. */
const clusterNodes = parseClusterNodes(process.env.REDIS_CLUSTER_NODES);

/**
 * True when the tests run against a Redis Cluster (REDIS_CLUSTER_NODES set), false against the
 * stack's single Redis. A file written for both reads Redis only through the member store.
 */
export const onCluster = clusterNodes !== undefined;

/**
 * Where Redis is, as the services' options take it (spread into them): the cluster's nodes, or
 * the single Redis. One of the two fields is set, never both.
 */
export function redisTarget(): { redisUrl?: string; redisClusterNodes?: string[] } {
  return clusterNodes !== undefined
    ? { redisClusterNodes: [...clusterNodes] }
    : { redisUrl: stack().redisUrl };
}

/** A client of the tests' Redis (a Cluster client on a cluster); the caller disconnects it. */
export function connectTestRedis(options: RedisOptions = {}): RedisClient {
  return connectRedis(redisTarget(), options);
}

/**
 * The environment a service process (consumer, API, CLI) needs to reach the tests' Redis. Both
 * variables are set, so an inherited REDIS_CLUSTER_NODES never outweighs the single Redis.
 */
export function redisEnv(): { REDIS_URL: string; REDIS_CLUSTER_NODES: string } {
  return clusterNodes !== undefined
    ? { REDIS_URL: "", REDIS_CLUSTER_NODES: clusterNodes.join(",") }
    : { REDIS_URL: stack().redisUrl, REDIS_CLUSTER_NODES: "" };
}

export interface Isolation {
  /** unique, lowercase, [a-z0-9_] only: safe in topic, key and database names */
  id: string;
  topic(name: string): string;
  group(name: string): string;
  /** a Redis key prefix; put the user hash tag after it, e.g. `${keyPrefix}{u1}:state` */
  keyPrefix: string;
  /** a ClickHouse database name, not yet created */
  database: string;
}

/** isolation(import.meta.url): names that belong to this test file and this run only. */
export function isolation(fileUrl: string): Isolation {
  const file = basename(fileURLToPath(fileUrl)).replace(/\.test\.ts$/, "");
  const slug = file
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .slice(0, 24);
  const id = `${slug}_${randomBytes(4).toString("hex")}`;
  return {
    id,
    topic: (name) => `t_${id}_${name}`,
    group: (name) => `g_${id}_${name}`,
    keyPrefix: `test:${id}:`,
    database: `db_${id}`,
  };
}
