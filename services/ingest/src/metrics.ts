// Prometheus metrics of one ingest instance: the registry and counters of every HTTP service
// (createHttpMetrics: requests, refusals) and the ingest's own.
import { createHttpMetrics, type HttpMetrics } from "@creditflow/http-service";
import { Counter, Histogram } from "prom-client";

export interface IngestMetrics extends HttpMetrics {
  eventsAccepted: Counter<"service">;
  ackSeconds: Histogram;
}

export function createMetrics(): IngestMetrics {
  const http = createHttpMetrics("cf_ingest_");
  return {
    ...http,
    eventsAccepted: new Counter({
      name: "cf_ingest_events_accepted_total",
      help: "Usage events acknowledged by Kafka, by sending service",
      labelNames: ["service"],
      registers: [http.registry],
    }),
    ackSeconds: new Histogram({
      name: "cf_ingest_kafka_ack_seconds",
      help: "Time from a validated request to Kafka's acknowledgement of all its events",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [http.registry],
    }),
  };
}
