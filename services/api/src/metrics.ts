// Prometheus metrics of one API instance: the registry and counters of every HTTP service
// (createHttpMetrics: requests, refusals) and the API's own.
import { createHttpMetrics, type HttpMetrics } from "@creditflow/http-service";
import { Counter, Histogram } from "prom-client";

export interface ApiMetrics extends HttpMetrics {
  latency: Histogram<"route">;
  commands: Counter<"type" | "repeat">;
  transactionsSource: Counter<"source">;
  cacheLookups: Counter<"cache" | "result">;
}

export function createMetrics(): ApiMetrics {
  const http = createHttpMetrics("cf_api_");
  const registers = [http.registry];
  return {
    ...http,
    latency: new Histogram({
      name: "cf_api_request_seconds",
      help: "Time to answer, by route",
      labelNames: ["route"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    commands: new Counter({
      name: "cf_api_commands_sent_total",
      help: "Credit commands acknowledged by Kafka, by type and whether the id was a repeat",
      labelNames: ["type", "repeat"],
      registers,
    }),
    transactionsSource: new Counter({
      name: "cf_api_transactions_source_total",
      help: "Transaction lists answered, by source (history: ClickHouse, live: Redis fallback)",
      labelNames: ["source"],
      registers,
    }),
    cacheLookups: new Counter({
      name: "cf_api_cache_lookups_total",
      help: "Lookups in the API's in-memory caches, by cache (member_token) and result (hit, miss)",
      labelNames: ["cache", "result"],
      registers,
    }),
  };
}
