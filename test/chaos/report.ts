// The chaos run's printed result: the faults injected (kind, count, times) and the invariants
// (name, items checked, held or violated), as markdown tables, and the first counterexample.
// Pure formatting over plain records.
import type { InvariantResult } from "./invariants.ts";
import type { BaseFaultKind, ClusterFaultKind, FaultKind } from "./schedule.ts";

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

/** The rows of every run's fault table. */
export const FAULT_LABELS: Record<BaseFaultKind, string> = {
  "consumer-kill": "consumer SIGKILL + restart",
  "sink-kill": "history sink SIGKILL + restart",
  "broker-restart": "Kafka broker SIGKILL + restart (rejoined ISR)",
  "clickhouse-outage": "ClickHouse stopped, then started",
  "redis-restart": "Redis restart (SHUTDOWN, AOF)",
  "redis-flush-rebuild": "Redis FLUSHALL + rebuild from ledger",
};

/** The rows a run on a Redis Cluster adds. */
export const CLUSTER_FAULT_LABELS: Record<ClusterFaultKind, string> = {
  "redis-master-kill": "Redis master SIGKILL, replica promoted, old master back as replica",
  "redis-reshard": "Redis Cluster reshard (slots and keys moved)",
};

export function faultLabel(kind: FaultKind): string {
  return kind in FAULT_LABELS
    ? FAULT_LABELS[kind as BaseFaultKind]
    : CLUSTER_FAULT_LABELS[kind as ClusterFaultKind];
}

const seconds = (ms: number) => (ms / 1000).toFixed(1);

/** One row per kind (the cluster's too when `cluster`): count, start times, durations of episodes. */
export function faultTable(records: FaultRecord[], cluster = false): string {
  const lines = ["| fault | count | at (s from load start) |", "|---|---:|---|"];
  const kinds = [
    ...Object.keys(FAULT_LABELS),
    ...(cluster ? Object.keys(CLUSTER_FAULT_LABELS) : []),
  ] as FaultKind[];
  for (const kind of kinds) {
    const of = records.filter((r) => r.kind === kind);
    const long = kind !== "consumer-kill" && kind !== "sink-kill";
    const times = of
      .map((r) =>
        long ? `${seconds(r.startedAtMs)} (${seconds(r.durationMs)} s)` : seconds(r.startedAtMs),
      )
      .join(", ");
    lines.push(`| ${faultLabel(kind)} | ${of.length} | ${times || "-"} |`);
  }
  return lines.join("\n");
}

/** One line per Redis Cluster fault (and Redis restart, flush on the cluster): when and what. */
export function clusterFaultLines(records: FaultRecord[]): string {
  return records
    .filter((r) => r.kind.startsWith("redis-"))
    .map(
      (r) =>
        `- ${seconds(r.startedAtMs)} s, ${seconds(r.durationMs)} s long: ${faultLabel(r.kind)}: ${r.error ?? r.detail}`,
    )
    .join("\n");
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
    : `${faultLabel(bad.kind)} at ${seconds(bad.startedAtMs)} s: ${bad.error}`;
}
