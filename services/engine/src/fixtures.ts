// Test fixtures only (imported by *.test.ts, never by index.ts): the shipped configuration read from
// deploy/config, the tests' units and start time, and short builders for inputs (harness.ts runs
// the engine on them). Tests may do I/O; the engine does not.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { type EngineConfig, makeConfig, type Plans, parsePlans, parseRateCard } from "./config.ts";
import { MAX_TIME_MS, MICROS_PER_CREDIT } from "./limits.ts";
import type {
  AgentTaskKind,
  CreditCommand,
  Feature,
  RecurrencePeriod,
  UsageEvent,
} from "./types.ts";

export const RATE_CARD_PATH = fileURLToPath(
  new URL("../../../deploy/config/rate-card.json", import.meta.url),
);
export const PLANS_PATH = fileURLToPath(
  new URL("../../../deploy/config/plans.json", import.meta.url),
);

export function readJson(path: string): unknown {
  return JSON.parse(readFileSync(path, "utf8"));
}

export const shippedRateCard = parseRateCard(readJson(RATE_CARD_PATH), RATE_CARD_PATH);
export const shippedPlans = parsePlans(readJson(PLANS_PATH), PLANS_PATH);
export const config: EngineConfig = makeConfig(shippedRateCard, shippedPlans);

/** The shipped config with some plan fields changed (e.g. overdraft: "carry"). */
export function configWith(change: Partial<Plans>): EngineConfig {
  return makeConfig(
    shippedRateCard,
    parsePlans({ ...structuredClone(shippedPlans), ...change }, "test"),
  );
}

export const C = MICROS_PER_CREDIT;
export const MIN = 60_000;
export const HOUR = 60 * MIN;
export const DAY = 24 * HOUR;
export const USER = "u1";
/** 2026-01-10T00:00Z */
export const T0 = Date.UTC(2026, 0, 10);
/** For property tests: any time the engine accepts, 1970 to MAX_TIME_MS (the year 2200). */
export const anyTimeMs = fc.integer({ min: 0, max: MAX_TIME_MS });

/**
 * A usage event costing exactly `micros` (a multiple of 10) with the default agent model: 1,000
 * uncached input tokens cost 10,000 micros.
 */
export function usage(
  id: string,
  eventAtMs: number,
  micros: number,
  opts: { taskId?: string; feature?: Feature; taskKind?: AgentTaskKind | null } = {},
): UsageEvent {
  if (micros % 10 !== 0) throw new Error("usage() costs are multiples of 10 micros");
  return {
    type: "usage",
    id,
    userId: USER,
    taskId: opts.taskId ?? `task-${id}`,
    feature: opts.feature ?? "agent",
    taskKind: opts.taskKind === undefined ? null : opts.taskKind,
    model: "kimi-k2",
    inputTokens: micros / 10,
    outputTokens: 0,
    cachedInputTokens: 0,
    eventAtMs,
  };
}

export function bonus(
  id: string,
  atMs: number,
  micros: number,
  expiresAtMs: number,
  opts: {
    priority?: number;
    effectiveFromMs?: number;
    source?: "trial" | "promotion";
    recurrence?: RecurrencePeriod | null;
  } = {},
): CreditCommand {
  return {
    type: "grant_bonus",
    id,
    userId: USER,
    atMs,
    source: opts.source ?? "promotion",
    amountMicros: micros,
    effectiveFromMs: opts.effectiveFromMs ?? atMs,
    expiresAtMs,
    priority: opts.priority ?? 0,
    recurrence: opts.recurrence ?? null,
  };
}

export function command<T extends CreditCommand["type"]>(
  type: T,
  id: string,
  atMs: number,
  fields: Omit<Extract<CreditCommand, { type: T }>, "type" | "id" | "userId" | "atMs">,
): CreditCommand {
  return { type, id, userId: USER, atMs, ...fields } as CreditCommand;
}
