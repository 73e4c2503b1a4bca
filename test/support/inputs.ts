// The credit inputs the tests send, built one way: a bonus grant, a usage input as a feature
// service hands it to the producer or the ingest, the engine's usage event of that input (the
// producer's own validation makes it), the usage of a member's tasks, a member out of credits,
// and the inputs sent kept per member for the engine replay.
import { type UsageInput, validateUsage } from "@creditflow/contracts";
import {
  DAY_MS,
  type EngineConfig,
  type EngineInput,
  type GrantBonusCommand,
  type RateCard,
  type UsageEvent,
} from "@creditflow/engine";
import { buildMember, usage } from "../../services/api/testing/harness.ts";

export interface BonusGrant {
  id: string;
  userId: string;
  amountMicros: number;
  /** When the command was issued. */
  atMs: number;
  expiresAtMs: number;
  /** Default: atMs. */
  effectiveFromMs?: number;
  /** Default: promotion. */
  source?: GrantBonusCommand["source"];
  /** Default: 0. */
  priority?: number;
}

/** A one-off bonus grant (no recurrence). */
export function bonusGrant(g: BonusGrant): GrantBonusCommand {
  return {
    type: "grant_bonus",
    id: g.id,
    userId: g.userId,
    atMs: g.atMs,
    source: g.source ?? "promotion",
    amountMicros: g.amountMicros,
    effectiveFromMs: g.effectiveFromMs ?? g.atMs,
    expiresAtMs: g.expiresAtMs,
    priority: g.priority ?? 0,
    recurrence: null,
  };
}

/**
 * A usage input of `userId` as a feature service sends it: a chat step on kimi-k2 of 1,000 input
 * and 100 output tokens now, in task `<userId>-t`, unless `over` says otherwise.
 */
export function usageInput(
  eventId: string,
  userId: string,
  over: Partial<UsageInput> = {},
): UsageInput {
  return {
    eventId,
    userId,
    taskId: `${userId}-t`,
    feature: "chat",
    model: "kimi-k2",
    inputTokens: 1_000,
    outputTokens: 100,
    occurredAt: Date.now(),
    ...over,
  };
}

/** The engine's usage event of a usage input, as the producer and the ingest make it. */
export function usageEvent(input: UsageInput, rateCard: RateCard): UsageEvent {
  const checked = validateUsage(input, rateCard);
  if (!checked.ok) {
    throw new Error(`assertion: a valid test input: ${JSON.stringify(checked.errors)}`);
  }
  return checked.value;
}

/** One step of a task (taskUsage): its feature, model (default kimi-k2), input tokens and time. */
export interface TaskStep {
  feature: UsageEvent["feature"];
  model?: string;
  inputTokens: number;
  atMs: number;
}

/**
 * One usage event in each of `count` tasks of `userId` (event `<userId>-e<i>` in task
 * `<userId>-t<i>`) as `step(i)` says; output tokens are a fifth of the input's (harness usage).
 */
export function taskUsage(
  userId: string,
  count: number,
  step: (i: number) => TaskStep,
): UsageEvent[] {
  return Array.from({ length: count }, (_, i) => {
    const { feature, model = "kimi-k2", inputTokens, atMs } = step(i);
    return usage(userId, `${userId}-e${i}`, `${userId}-t${i}`, feature, model, inputTokens, atMs);
  });
}

/**
 * A member out of credits until the refresh: signed up nine days before `nowMs`, every credit
 * spent eight days before it (one chat task of 10 million input tokens).
 */
export function spentMember(config: EngineConfig, userId: string, nowMs: number) {
  const spentAtMs = nowMs - 8 * DAY_MS;
  return buildMember(config, userId, nowMs - 9 * DAY_MS, [
    usage(userId, `${userId}-e0`, `${userId}-t0`, "chat", "kimi-k2", 10_000_000, spentAtMs),
  ]);
}

/** Adds an input to the ones sent to its member, in send order (the engine replays them). */
export function remember(sent: Map<string, EngineInput[]>, input: EngineInput): void {
  const list = sent.get(input.userId) ?? [];
  list.push(input);
  sent.set(input.userId, list);
}
