// What the API's integration and browser tests share: member tokens, a member's state built with
// the engine and written to Redis exactly as the consumer writes it, the same state's ledger as
// ClickHouse history rows, and usage events. Test code only; not part of the package door.
import { ledgerRecordFromEntry } from "@creditflow/contracts";
import {
  apply,
  type EngineConfig,
  type EngineInput,
  type LedgerEntry,
  type MemberState,
  openMember,
  type UsageEvent,
} from "@creditflow/engine";
import { ledgerRow } from "@creditflow/history";
import { keySpace, type RedisClient, seedMembers } from "@creditflow/member-store";
import { SignJWT } from "jose";

/** A test-only key: 32+ bytes, generated per run by callers that care. */
export const TEST_JWT_SECRET = "test-only-jwt-secret-0123456789abcdef";

export async function memberToken(
  sub: string,
  opts: { secret?: string; expiresInSeconds?: number; withoutExp?: boolean } = {},
): Promise<string> {
  const jwt = new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject(sub).setIssuedAt();
  if (!opts.withoutExp) {
    jwt.setExpirationTime(Math.floor(Date.now() / 1000) + (opts.expiresInSeconds ?? 3600));
  }
  return jwt.sign(new TextEncoder().encode(opts.secret ?? TEST_JWT_SECRET));
}

/**
 * The member after `inputs`, opened at `signUpAtMs` as the consumer opens members; each input is
 * processed at its own time (usage: its event time, commands: their issue time).
 */
export function buildMember(
  config: EngineConfig,
  userId: string,
  signUpAtMs: number,
  inputs: EngineInput[],
): { state: MemberState; entries: LedgerEntry[] } {
  const opened = openMember(userId, signUpAtMs, { config, nowMs: signUpAtMs });
  let state = opened.state;
  const entries = [...opened.entries];
  for (const input of inputs) {
    const nowMs = input.type === "usage" ? input.eventAtMs : input.atMs;
    const result = apply(state, input, { config, nowMs });
    if (result.outcome.status === "refused") {
      throw new Error(`seed input ${input.id} refused: ${result.outcome.refusal.message}`);
    }
    state = result.state;
    entries.push(...result.entries);
  }
  return { state, entries };
}

/** The member's state at `version` under `prefix`, as the consumer would have left it. */
export async function writeMember(
  redis: RedisClient,
  prefix: string,
  state: MemberState,
  version = 1,
): Promise<void> {
  await seedMembers(redis, keySpace(prefix), [state], version);
}

/** The ledger entries as rows of ClickHouse's ledger_entries (what the history sink writes). */
export function historyRows(entries: LedgerEntry[]) {
  return entries.map((e, i) => ledgerRow(ledgerRecordFromEntry(e), { partition: 0, offset: i }));
}

/** One usage event of a task; the cost follows the rate card of `model`. */
export function usage(
  userId: string,
  id: string,
  taskId: string,
  feature: UsageEvent["feature"],
  model: string,
  inputTokens: number,
  eventAtMs: number,
): UsageEvent {
  return {
    type: "usage",
    id,
    userId,
    taskId,
    feature,
    taskKind: null,
    model,
    inputTokens,
    outputTokens: Math.floor(inputTokens / 5),
    cachedInputTokens: 0,
    eventAtMs,
  };
}
