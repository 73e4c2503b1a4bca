// The edge of the duplicate horizon (docs/product-rules.md, "One id, one effect"): an input whose own time
// is older than the horizon when it is accepted can no longer be told from a duplicate, so the
// edges (producer library, HTTP ingest) refuse it as `too_old` before Kafka, and the consumer
// dead-letters it with that reason. Pure: the caller passes its clock and its horizon.
import type { FieldError } from "./validate.ts";

/** True when `atMs` (the input's own time) is older than `horizonMs` before `nowMs`. */
export function isOlderThanHorizon(atMs: number, nowMs: number, horizonMs: number): boolean {
  return atMs < nowMs - horizonMs;
}

/**
 * tooOldError(atMs, nowMs, horizonMs, field): the `too_old` error naming `field` (`occurredAt`,
 * `events.3.occurredAt`) when the input is older than the horizon, else null.
 */
export function tooOldError(
  atMs: number,
  nowMs: number,
  horizonMs: number,
  field: string,
): FieldError | null {
  if (!isOlderThanHorizon(atMs, nowMs, horizonMs)) return null;
  return {
    field,
    code: "too_old",
    message:
      `${field} ${new Date(atMs).toISOString()} is older than the duplicate horizon ` +
      `(${formatHorizon(horizonMs)} before ${new Date(nowMs).toISOString()}): ` +
      "an input this old can no longer be told from a duplicate, so it is never applied",
  };
}

/** 86400000 → "24 h", 1500 → "1.5 s": the horizon as people read it. */
export function formatHorizon(horizonMs: number): string {
  const units: Array<[number, string]> = [
    [24 * 60 * 60 * 1000, "d"],
    [60 * 60 * 1000, "h"],
    [60 * 1000, "min"],
    [1000, "s"],
  ];
  for (const [ms, unit] of units) {
    if (horizonMs >= ms && horizonMs % ms === 0 && !(unit === "d" && horizonMs / ms === 1)) {
      return `${horizonMs / ms} ${unit}`;
    }
  }
  return horizonMs >= 1000 ? `${horizonMs / 1000} s` : `${horizonMs} ms`;
}
