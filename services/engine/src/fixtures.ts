// Test fixtures only (imported by *.test.ts, never by index.ts): the shipped configuration read from
// deploy/config, and short builders for inputs. Tests may do I/O; the engine does not.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type EngineConfig, makeConfig, type Plans, parsePlans, parseRateCard } from "./config.ts";
import { MICROS_PER_CREDIT } from "./limits.ts";
import { type EngineContext, openMember } from "./state.ts";
import type {
  AgentTaskKind,
  CreditCommand,
  Feature,
  MemberState,
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

export function ctxAt(nowMs: number, cfg: EngineConfig = config): EngineContext {
  return { config: cfg, nowMs };
}

export function newMember(atMs = T0, cfg: EngineConfig = config): MemberState {
  return openMember(USER, atMs, ctxAt(atMs, cfg)).state;
}

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

/** The state without its memory of applied ids: what a refusal must leave unchanged. */
export function withoutMemory(state: MemberState): Omit<MemberState, "applied"> {
  const { applied: _applied, ...rest } = state;
  return rest;
}
