// Prometheus metrics of one API instance, on a registry of its own (so several instances, e.g. in
// tests, never collide in prom-client's global registry).
import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";

export interface ApiMetrics {
  registry: Registry;
  requests: Counter<"route" | "status">;
  latency: Histogram<"route">;
  refused: Counter<"code">;
  commands: Counter<"type" | "repeat">;
  transactionsSource: Counter<"source">;
  cacheLookups: Counter<"cache" | "result">;
}

export function createMetrics(): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "cf_api_" });
  return {
    registry,
    requests: new Counter({
      name: "cf_api_requests_total",
      help: "HTTP requests answered, by route and status",
      labelNames: ["route", "status"],
      registers: [registry],
    }),
    latency: new Histogram({
      name: "cf_api_request_seconds",
      help: "Time to answer, by route",
      labelNames: ["route"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    refused: new Counter({
      name: "cf_api_refused_total",
      help: "Requests refused, by error code",
      labelNames: ["code"],
      registers: [registry],
    }),
    commands: new Counter({
      name: "cf_api_commands_sent_total",
      help: "Credit commands acknowledged by Kafka, by type and whether the id was a repeat",
      labelNames: ["type", "repeat"],
      registers: [registry],
    }),
    transactionsSource: new Counter({
      name: "cf_api_transactions_source_total",
      help: "Transaction lists answered, by source (history: ClickHouse, live: Redis fallback)",
      labelNames: ["source"],
      registers: [registry],
    }),
    cacheLookups: new Counter({
      name: "cf_api_cache_lookups_total",
      help: "Lookups in the API's in-memory caches, by cache (member_token) and result (hit, miss)",
      labelNames: ["cache", "result"],
      registers: [registry],
    }),
  };
}
