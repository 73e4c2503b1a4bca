// Prometheus metrics of one consumer process (its own registry, so two consumers in one test
// process do not collide) and the small HTTP server that serves /metrics and /healthz.

import Fastify, { type FastifyInstance } from "fastify";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

export class ConsumerMetrics {
  readonly registry = new Registry();
  readonly records = new Counter({
    name: "cf_consumer_records_total",
    help: "Records read, by topic and result (applied, duplicate, refused, skipped, dead_letter)",
    labelNames: ["topic", "result"],
    registers: [this.registry],
  });
  readonly ledgerEntries = new Counter({
    name: "cf_consumer_ledger_entries_relayed_total",
    help: "Ledger entries produced to the ledger topic (leftovers of a predecessor included)",
    registers: [this.registry],
  });
  readonly leftovers = new Counter({
    name: "cf_consumer_outbox_leftovers_total",
    help: "Outbox entries found at load that an earlier process wrote and did not delete",
    registers: [this.registry],
  });
  readonly outboxBacklog = new Gauge({
    name: "cf_consumer_outbox_backlog_entries",
    help: "Entries written to outboxes by this process and not yet relayed and deleted",
    registers: [this.registry],
  });
  readonly deadLetters = new Counter({
    name: "cf_consumer_dead_letters_total",
    help: "Records sent to the dead-letter topic, by reason",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly casConflicts = new Counter({
    name: "cf_consumer_cas_conflicts_total",
    help: "Member writes refused because the version changed (another writer); redone",
    registers: [this.registry],
  });
  readonly redisRedirections = new Counter({
    name: "cf_consumer_redis_redirections_total",
    help: "Redis commands sent again, by why: moved, ask, tryagain, clusterdown (a Redis Cluster's slots moving or failing over), noscript",
    labelNames: ["why"],
    registers: [this.registry],
  });
  readonly sweptMembers = new Counter({
    name: "cf_consumer_swept_members_total",
    help: "Members advanced by the deadline sweeper with at least one ledger entry",
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: "cf_consumer_batch_records",
    help: "Records per applied unit (a chunk of a Kafka batch)",
    buckets: [1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000],
    registers: [this.registry],
  });
  readonly applySeconds = new Histogram({
    name: "cf_consumer_apply_seconds",
    help: "Load, engine apply and atomic write of one unit's members",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly unitSeconds = new Histogram({
    name: "cf_consumer_unit_seconds",
    help: "One unit end to end: decode, apply, relay, release, commit",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly lag = new Gauge({
    name: "cf_consumer_lag_records",
    help: "Records behind the high watermark, per partition, at the last batch",
    labelNames: ["topic", "partition"],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "cf_consumer_" });
  }
}

export interface Health {
  ok: boolean;
  detail: Record<string, unknown>;
}

export async function serveMetrics(
  metrics: ConsumerMetrics,
  port: number,
  health: () => Health,
): Promise<{ server: FastifyInstance; port: number }> {
  const server = Fastify({ logger: false });
  server.get("/metrics", async (_request, reply) => {
    reply.header("content-type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  server.get("/healthz", async (_request, reply) => {
    const h = health();
    reply.code(h.ok ? 200 : 503);
    return { status: h.ok ? "ok" : "unavailable", ...h.detail };
  });
  await server.listen({ port, host: "127.0.0.1" });
  const address = server.server.address();
  const bound = typeof address === "object" && address !== null ? address.port : port;
  return { server, port: bound };
}
