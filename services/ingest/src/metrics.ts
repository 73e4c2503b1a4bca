// Prometheus metrics of one ingest instance, on a registry of its own (so several instances,
// e.g. in tests, never collide in prom-client's global registry).
import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";

export interface IngestMetrics {
  registry: Registry;
  requests: Counter<"route" | "status">;
  eventsAccepted: Counter<"service">;
  refused: Counter<"code">;
  ackSeconds: Histogram;
}

export function createMetrics(): IngestMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "cf_ingest_" });
  return {
    registry,
    requests: new Counter({
      name: "cf_ingest_requests_total",
      help: "HTTP requests answered, by route and status",
      labelNames: ["route", "status"],
      registers: [registry],
    }),
    eventsAccepted: new Counter({
      name: "cf_ingest_events_accepted_total",
      help: "Usage events acknowledged by Kafka, by sending service",
      labelNames: ["service"],
      registers: [registry],
    }),
    refused: new Counter({
      name: "cf_ingest_refused_total",
      help: "Requests refused, by error code",
      labelNames: ["code"],
      registers: [registry],
    }),
    ackSeconds: new Histogram({
      name: "cf_ingest_kafka_ack_seconds",
      help: "Time from a validated request to Kafka's acknowledgement of all its events",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
  };
}
