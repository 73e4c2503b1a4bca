// Goal: a service's registry holds its own requests and refusals counters and the process's
// default metrics, all under its prefix, apart from any other service's registry.
import { describe, expect, it } from "vitest";
import { createHttpMetrics } from "./metrics.ts";

describe("createHttpMetrics", () => {
  it("counts requests and refusals under the prefix, on a registry of its own", async () => {
    const api = createHttpMetrics("cf_api_");
    const ingest = createHttpMetrics("cf_ingest_");
    api.requests.inc({ route: "/healthz", status: "200" });
    api.refused.inc({ code: "not_found" });
    const text = await api.registry.metrics();
    expect(text).toContain('cf_api_requests_total{route="/healthz",status="200"} 1');
    expect(text).toContain('cf_api_refused_total{code="not_found"} 1');
    expect(text).toContain("cf_api_process_cpu_seconds_total");
    expect(await ingest.registry.metrics()).not.toContain("cf_api_");
  });
});
