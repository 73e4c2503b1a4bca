// The compact, versioned form of a member's state for Redis: JSON arrays with short codes instead of
// objects with names. decodeState(encodeState(s)) equals s exactly.

import { EngineError } from "./errors.ts";
import { hash53 } from "./fingerprint.ts";
import {
  type AppliedRecord,
  FEATURES,
  type Grant,
  type GrantSource,
  type LedgerEntry,
  type LedgerKind,
  type MemberState,
  REFUSAL_REASONS,
  type RecurrencePeriod,
} from "./types.ts";

export const STATE_CODEC_VERSION = 1;

const CLASSES = ["bonus", "subscription"] as const;
const SOURCES: readonly GrantSource[] = [
  "trial",
  "promotion",
  "subscription",
  "migration",
  "purchase",
  "adjustment",
];
const PERIODS: readonly RecurrencePeriod[] = ["5h", "7d", "1mo"];
const KINDS: readonly LedgerKind[] = [
  "debit",
  "grant",
  "expire",
  "reset",
  "overdraft",
  "migration",
  "adjust",
  "revoke",
];
const BILLINGS = ["free", "monthly", "annual"] as const;
/** In an entry: "the same value as the previous entry of the record" (never a valid value). */
const SAME = -1;

function code<T>(list: readonly T[], value: T): number {
  const i = list.indexOf(value);
  if (i < 0) throw new EngineError("assertion_failed", `no code for ${String(value)}`);
  return i;
}

function encodeGrant(g: Grant): unknown[] {
  const r = g.recurrence;
  return [
    g.id,
    code(CLASSES, g.cls),
    code(SOURCES, g.source),
    // Spent rather than remaining, and times after effectiveFrom: short numbers in the common case.
    g.amountMicros,
    g.amountMicros - g.remainingMicros,
    g.effectiveFromMs,
    g.expiresAtMs === null ? null : g.expiresAtMs - g.effectiveFromMs,
    g.priority,
    g.createdAtMs - g.effectiveFromMs,
    r === null ? null : [code(PERIODS, r.period), r.anchorMs, r.nextIndex],
  ];
}

function encodeEntries(recordId: string, entries: LedgerEntry[]): unknown[] {
  let prev: LedgerEntry | null = null;
  return entries.map((e, i) => {
    const same = <K extends keyof LedgerEntry>(k: K) =>
      prev !== null && prev[k] === e[k] ? SAME : e[k];
    const row = [
      e.id === `${recordId}#${i}` ? i : e.id,
      code(KINDS, e.kind),
      e.grantId,
      e.cls === null ? null : code(CLASSES, e.cls),
      e.amountMicros,
      e.balanceAfterMicros,
      e.detailMicros,
      same("feature"),
      same("taskId"),
      same("eventAtMs"),
      same("processedAtMs"),
    ];
    prev = e;
    return row;
  });
}

/** The state as a compact string (version first). */
export function encodeState(state: MemberState): string {
  const t = state.tier;
  return JSON.stringify([
    STATE_CODEC_VERSION,
    state.userId,
    state.clockMs,
    [t.tierId, code(BILLINGS, t.billing), t.anchorMs, t.grantId, t.pendingTierId, t.cancelAtMs],
    state.grants.map(encodeGrant),
    state.debtMicros,
    state.window5h === null ? null : [state.window5h.startMs, state.window5h.usedMicros],
    state.window7d === null ? null : [state.window7d.startMs, state.window7d.usedMicros],
    state.migrated ? 1 : 0,
    state.recentTasks.map((k) => [
      k.taskId,
      code(FEATURES, k.feature),
      k.taskKind,
      k.firstAtMs,
      k.lastAtMs,
      k.costMicros,
    ]),
    state.applied.map((a) =>
      a.refusal === null
        ? a.entries === null
          ? [a.id, a.fingerprint]
          : [a.id, a.fingerprint, encodeEntries(a.id, a.entries)]
        : [
            a.id,
            a.fingerprint,
            null,
            [code(REFUSAL_REASONS, a.refusal.reason), a.refusal.field, a.refusal.message],
          ],
    ),
  ]);
}

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

function decodeGrant(v: unknown): Grant {
  const g = arr(v, "grant");
  const r = g[9] === null ? null : arr(g[9], "recurrence");
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
    recurrence:
      r === null
        ? null
        : {
            period: pick(PERIODS, r[0], "recurrence.period"),
            anchorMs: int(r[1], "recurrence.anchor"),
            nextIndex: int(r[2], "recurrence.nextIndex"),
          },
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

function decodeApplied(userId: string, raw: unknown): AppliedRecord {
  const a = arr(raw, "applied");
  const id = str(a[0], "applied.id");
  const r = a[3] === undefined ? null : arr(a[3], "refusal");
  return {
    id,
    fingerprint: int(a[1], "applied.fp"),
    entries: a[2] === undefined || a[2] === null ? null : decodeEntries(userId, id, a[2]),
    refusal:
      r === null
        ? null
        : {
            reason: pick(REFUSAL_REASONS, r[0], "refusal.reason"),
            field: strOrNull(r[1], "refusal.field"),
            message: str(r[2], "refusal.message"),
          },
  };
}

/** Reads a state written by encodeState; throws EngineError(state_invalid) on anything else. */
export function decodeState(text: string): MemberState {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (cause) {
    throw new EngineError("state_invalid", "stored member state is not JSON", [], cause);
  }
  const v = arr(root, "state");
  if (v[0] !== STATE_CODEC_VERSION) fail(`unknown version ${String(v[0])}`);
  const userId = str(v[1], "userId");
  const t = arr(v[3], "tier");
  const window = (w: unknown) => {
    if (w === null) return null;
    const a = arr(w, "window");
    return { startMs: int(a[0], "window.start"), usedMicros: int(a[1], "window.used") };
  };
  const applied = arr(v[10], "applied").map((raw) => decodeApplied(userId, raw));
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
    applied,
    appliedIdHashes: applied.map((a) => hash53(a.id)),
  };
}
