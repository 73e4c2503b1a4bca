// The metrics every creditflow HTTP service keeps, on a registry of its own (so several
// instances, e.g. in tests, never collide in prom-client's global registry): the process's
// default metrics, the requests answered by route and status, the refusals by error code.
import { Counter, collectDefaultMetrics, Registry } from "prom-client";

export interface HttpMetrics {
  registry: Registry;
  requests: Counter<"route" | "status">;
  refused: Counter<"code">;
}

/** A new registry whose metrics are all named `<prefix>…` (`cf_api_`), with the two counters. */
export function createHttpMetrics(prefix: string): HttpMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix });
  return {
    registry,
    requests: new Counter({
      name: `${prefix}requests_total`,
      help: "HTTP requests answered, by route and status",
      labelNames: ["route", "status"],
      registers: [registry],
    }),
    refused: new Counter({
      name: `${prefix}refused_total`,
      help: "Requests refused, by error code",
      labelNames: ["code"],
      registers: [registry],
    }),
  };
}
