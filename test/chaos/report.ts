// The chaos run's printed result: the faults injected (kind, count, times) and the invariants
// (name, items checked, held or violated), as markdown tables, and the first counterexample.
// Pure formatting over plain records.
import type { InvariantResult } from "./invariants.ts";
import type { FaultKind } from "./schedule.ts";

/** One fault as it happened: when (ms from the start of the load), how long, and what it did. */
export interface FaultRecord {
  kind: FaultKind;
  scheduledAtMs: number;
  startedAtMs: number;
  durationMs: number;
  detail: string;
  /** Set when the fault could not be carried out as planned (the run then fails). */
  error: string | null;
}

export const FAULT_LABELS: Record<FaultKind, string> = {
  "consumer-kill": "consumer SIGKILL + restart",
  "sink-kill": "history sink SIGKILL + restart",
  "broker-restart": "Kafka broker SIGKILL + restart (rejoined ISR)",
  "clickhouse-outage": "ClickHouse stopped, then started",
  "redis-restart": "Redis restart (SHUTDOWN, AOF)",
  "redis-flush-rebuild": "Redis FLUSHALL + rebuild from ledger",
};

const seconds = (ms: number) => (ms / 1000).toFixed(1);

export function faultTable(records: FaultRecord[]): string {
  const lines = ["| fault | count | at (s from load start) |", "|---|---:|---|"];
  for (const kind of Object.keys(FAULT_LABELS) as FaultKind[]) {
    const of = records.filter((r) => r.kind === kind);
    const long = kind !== "consumer-kill" && kind !== "sink-kill";
    const times = of
      .map((r) =>
        long ? `${seconds(r.startedAtMs)} (${seconds(r.durationMs)} s)` : seconds(r.startedAtMs),
      )
      .join(", ");
    lines.push(`| ${FAULT_LABELS[kind]} | ${of.length} | ${times || "-"} |`);
  }
  return lines.join("\n");
}

export function invariantTable(results: InvariantResult[]): string {
  const lines = ["| invariant | checked | result |", "|---|---:|---|"];
  for (const r of results) {
    const verdict = r.violations === 0 ? "held" : `VIOLATED (${r.violations})`;
    lines.push(`| ${r.name} | ${r.checked.toLocaleString("en-US")} | ${verdict} |`);
  }
  return lines.join("\n");
}

/** The first counterexample of the first violated invariant, or null when all held. */
export function firstCounterexample(results: InvariantResult[]): string | null {
  const bad = results.find((r) => r.violations > 0);
  return bad === undefined ? null : `${bad.name}: ${bad.first ?? "(no detail)"}`;
}

/** A fault that could not be carried out, or null. */
export function firstFaultError(records: FaultRecord[]): string | null {
  const bad = records.find((r) => r.error !== null);
  return bad === undefined
    ? null
    : `${FAULT_LABELS[bad.kind]} at ${seconds(bad.startedAtMs)} s: ${bad.error}`;
}
