// Version 1 of the stored state (JSON arrays with short codes, one array per grant, task, record
// and entry), still read so states stored before version 2 keep working; never written any more.

import { EngineError } from "./errors.ts";
import { hash53 } from "./fingerprint.ts";
import { IdMemory } from "./memory.ts";
import { BILLINGS, CLASSES, KINDS, PERIODS, SOURCES } from "./state-codes.ts";
import {
  type AppliedRecord,
  FEATURES,
  type Grant,
  type LedgerEntry,
  type MemberState,
  REFUSAL_REASONS,
} from "./types.ts";

export const STATE_CODEC_V1 = 1;

/** In an entry: "the same value as the previous entry of the record" (never a valid value). */
const SAME = -1;

// Decoding trusts the shape only after checking it: a corrupt value is an infrastructure failure.
function fail(why: string): never {
  throw new EngineError("state_invalid", `stored member state is invalid: ${why}`);
}
function arr(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) fail(`${what} is not an array`);
  return v;
}
function int(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v)) fail(`${what} is not an integer`);
  return v;
}
function intOrNull(v: unknown, what: string): number | null {
  return v === null ? null : int(v, what);
}
function str(v: unknown, what: string): string {
  if (typeof v !== "string") fail(`${what} is not a string`);
  return v;
}
function strOrNull(v: unknown, what: string): string | null {
  return v === null ? null : str(v, what);
}
function pick<T>(list: readonly T[], v: unknown, what: string): T {
  const i = int(v, what);
  const value = list[i];
  if (value === undefined) fail(`${what} code ${i} is unknown`);
  return value;
}
/** A record stored as an array of its fields: `decode` of them, or null when `v` is `absent`. */
function optional<T>(
  v: unknown,
  absent: null | undefined,
  what: string,
  decode: (fields: unknown[]) => T,
): T | null {
  return v === absent ? null : decode(arr(v, what));
}

function decodeGrant(v: unknown): Grant {
  const g = arr(v, "grant");
  const amount = int(g[3], "grant.amount");
  const from = int(g[5], "grant.effectiveFrom");
  const expiresAfter = intOrNull(g[6], "grant.expiresAt");
  return {
    id: str(g[0], "grant.id"),
    cls: pick(CLASSES, g[1], "grant.cls"),
    source: pick(SOURCES, g[2], "grant.source"),
    amountMicros: amount,
    remainingMicros: amount - int(g[4], "grant.spent"),
    effectiveFromMs: from,
    expiresAtMs: expiresAfter === null ? null : from + expiresAfter,
    priority: int(g[7], "grant.priority"),
    createdAtMs: from + int(g[8], "grant.createdAt"),
    recurrence: optional(g[9], null, "recurrence", (r) => ({
      period: pick(PERIODS, r[0], "recurrence.period"),
      anchorMs: int(r[1], "recurrence.anchor"),
      nextIndex: int(r[2], "recurrence.nextIndex"),
    })),
  };
}

function decodeEntries(userId: string, recordId: string, v: unknown): LedgerEntry[] {
  let prev: LedgerEntry | null = null;
  return arr(v, "entries").map((raw) => {
    const e = arr(raw, "entry");
    const inherit = <K extends keyof LedgerEntry>(k: K, value: unknown): unknown => {
      if (value !== SAME) return value;
      if (prev === null) fail("first entry refers to a previous one");
      return prev[k];
    };
    const entry: LedgerEntry = {
      id: typeof e[0] === "number" ? `${recordId}#${e[0]}` : str(e[0], "entry.id"),
      kind: pick(KINDS, e[1], "entry.kind"),
      userId,
      grantId: strOrNull(e[2], "entry.grantId"),
      cls: e[3] === null ? null : pick(CLASSES, e[3], "entry.cls"),
      amountMicros: int(e[4], "entry.amount"),
      balanceAfterMicros: int(e[5], "entry.balanceAfter"),
      detailMicros: int(e[6], "entry.detail"),
      feature: strOrNull(inherit("feature", e[7]), "entry.feature") as LedgerEntry["feature"],
      taskId: strOrNull(inherit("taskId", e[8]), "entry.taskId"),
      eventAtMs: int(inherit("eventAtMs", e[9]), "entry.eventAt"),
      processedAtMs: int(inherit("processedAtMs", e[10]), "entry.processedAt"),
    };
    prev = entry;
    return entry;
  });
}

/** A version 1 record: its horizon time is taken as the state's clock (`atSec`). */
function decodeApplied(userId: string, raw: unknown, atSec: number): AppliedRecord {
  const a = arr(raw, "applied");
  const id = str(a[0], "applied.id");
  return {
    id,
    fingerprint: int(a[1], "applied.fp"),
    entries: a[2] === undefined || a[2] === null ? null : decodeEntries(userId, id, a[2]),
    refusal: optional(a[3], undefined, "refusal", (r) => ({
      reason: pick(REFUSAL_REASONS, r[0], "refusal.reason"),
      field: strOrNull(r[1], "refusal.field"),
      message: str(r[2], "refusal.message"),
    })),
    atSec,
  };
}

/** Reads a version 1 state already parsed from JSON (v[0] === 1). */
export function decodeStateV1(v: unknown[]): MemberState {
  const userId = str(v[1], "userId");
  const t = arr(v[3], "tier");
  const window = (w: unknown) =>
    optional(w, null, "window", (a) => ({
      startMs: int(a[0], "window.start"),
      usedMicros: int(a[1], "window.used"),
    }));
  const atSec = Math.ceil(int(v[2], "clockMs") / 1000);
  const applied = arr(v[10], "applied").map((raw) => decodeApplied(userId, raw, atSec));
  return {
    userId,
    clockMs: int(v[2], "clockMs"),
    tier: {
      tierId: str(t[0], "tier.id"),
      billing: pick(BILLINGS, t[1], "tier.billing"),
      anchorMs: int(t[2], "tier.anchor"),
      grantId: str(t[3], "tier.grantId"),
      pendingTierId: strOrNull(t[4], "tier.pending"),
      cancelAtMs: intOrNull(t[5], "tier.cancelAt"),
    },
    grants: arr(v[4], "grants").map(decodeGrant),
    debtMicros: int(v[5], "debt"),
    window5h: window(v[6]),
    window7d: window(v[7]),
    migrated: v[8] === 1,
    lowCreditNotified: false,
    exhaustedNotified: false,
    recentTasks: arr(v[9], "tasks").map((raw) => {
      const k = arr(raw, "task");
      return {
        taskId: str(k[0], "task.id"),
        feature: pick(FEATURES, k[1], "task.feature"),
        taskKind: strOrNull(k[2], "task.kind") as MemberState["recentTasks"][number]["taskKind"],
        firstAtMs: int(k[3], "task.first"),
        lastAtMs: int(k[4], "task.last"),
        costMicros: int(k[5], "task.cost"),
      };
    }),
    applied: IdMemory.of(
      applied,
      applied.map((a) => hash53(a.id)),
    ),
  };
}
