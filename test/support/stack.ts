// What a test file needs to reach the real stack: the service addresses found by the global
// setup, and names of its own (topics, Redis key prefix, ClickHouse database) so files run
// in parallel without touching each other.
import { randomBytes } from "node:crypto";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
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
