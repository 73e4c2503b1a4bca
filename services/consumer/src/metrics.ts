// Prometheus metrics of one consumer process (its own registry, so two consumers in one test
// process do not collide) and the small HTTP server that serves /metrics and /healthz.

import Fastify, { type FastifyInstance } from "fastify";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** Every metric of the consumer is named `cf_consumer_…`. */
const PREFIX = "cf_consumer_";

/** What each metric measures (its help), by its name after the prefix. */
const HELP = {
  records_total:
    "Records read, by topic and result (applied, duplicate, refused, skipped, dead_letter)",
  ledger_entries_relayed_total:
    "Ledger entries produced to the ledger topic (leftovers of a predecessor included)",
  outbox_leftovers_total:
    "Outbox entries found at load that an earlier process wrote and did not delete",
  outbox_backlog_entries:
    "Entries written to outboxes by this process and not yet relayed and deleted",
  dead_letters_total: "Records sent to the dead-letter topic, by reason",
  cas_conflicts_total: "Member writes refused because the version changed (another writer); redone",
  redis_redirections_total:
    "Redis commands sent again, by why: moved, ask, tryagain, clusterdown (a Redis Cluster's slots moving or failing over), noscript",
  swept_members_total: "Members advanced by the deadline sweeper with at least one ledger entry",
  batch_records: "Records per applied unit (a chunk of a Kafka batch)",
  apply_seconds: "Load, engine apply and atomic write of one unit's members",
  unit_seconds: "One unit end to end: decode, apply, relay, release, commit",
  lag_records: "Records behind the high watermark, per partition, at the last batch",
};
type MetricName = keyof typeof HELP;

export class ConsumerMetrics {
  readonly registry = new Registry();
  readonly records = this.counter("records_total", ["topic", "result"]);
  readonly ledgerEntries = this.counter("ledger_entries_relayed_total");
  readonly leftovers = this.counter("outbox_leftovers_total");
  readonly outboxBacklog = this.gauge("outbox_backlog_entries");
  readonly deadLetters = this.counter("dead_letters_total", ["reason"]);
  readonly casConflicts = this.counter("cas_conflicts_total");
  readonly redisRedirections = this.counter("redis_redirections_total", ["why"]);
  readonly sweptMembers = this.counter("swept_members_total");
  readonly batchSize = this.histogram(
    "batch_records",
    [1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000],
  );
  readonly applySeconds = this.histogram(
    "apply_seconds",
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  );
  readonly unitSeconds = this.histogram(
    "unit_seconds",
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );
  readonly lag = this.gauge("lag_records", ["topic", "partition"]);

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
  }

  // The field initialisers above call these; they use only the registry, initialised first.
  private counter<const L extends string = never>(name: MetricName, labelNames: L[] = []) {
    const help = HELP[name];
    return new Counter<L>({ name: PREFIX + name, help, labelNames, registers: [this.registry] });
  }

  private gauge<const L extends string = never>(name: MetricName, labelNames: L[] = []) {
    const help = HELP[name];
    return new Gauge<L>({ name: PREFIX + name, help, labelNames, registers: [this.registry] });
  }

  private histogram(name: MetricName, buckets: number[]) {
    const help = HELP[name];
    return new Histogram({ name: PREFIX + name, help, buckets, registers: [this.registry] });
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
