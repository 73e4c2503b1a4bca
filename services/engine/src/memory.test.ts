// Goal: the shared id memory behaves as the copied arrays it replaces: every state keeps the records
// it had (whatever is remembered after it, from it or from an older state), the oldest recent id
// becomes a compact record at MAX_REMEMBERED_IDS, entries are kept for the last
// MAX_REMEMBERED_ANSWERS only, compact records go only once the horizon has passed them, and two
// memories are equal (toEqual) exactly when their records are.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { byKey, idKey, keyText } from "./compact-ids.ts";
import { hash53 } from "./fingerprint.ts";
import { MAX_REMEMBERED_ANSWERS, MAX_REMEMBERED_IDS } from "./limits.ts";
import { IdMemory } from "./memory.ts";
import type { AppliedRecord, LedgerEntry, Refusal } from "./types.ts";

const REFUSAL: Refusal = { reason: "unknown_model", field: "model", message: "no rate" };

function entriesOf(id: string): LedgerEntry[] {
  return [
    {
      id: `${id}#0`,
      kind: "debit",
      userId: "u",
      grantId: "g",
      cls: "bonus",
      amountMicros: -1,
      balanceAfterMicros: 0,
      detailMicros: 0,
      feature: "chat",
      taskId: "t",
      eventAtMs: 0,
      processedAtMs: 0,
    },
  ];
}

/** A recent record as the memory shows it once compact. */
function compacted(r: AppliedRecord): AppliedRecord {
  return {
    id: `#${keyText(idKey(r.id))}`,
    fingerprint: r.fingerprint,
    entries: null,
    refusal: r.refusal === null ? null : { reason: r.refusal.reason, field: null, message: "" },
    atSec: r.atSec,
  };
}

/** The memory's order: compact records in key order (their `#<key>` ids), then the recent ones. */
function compactInKeyOrder(records: AppliedRecord[]): AppliedRecord[] {
  const compact = records.filter((r) => r.id.startsWith("#"));
  compact.sort((a, b) => byKey(a.id.slice(1), b.id.slice(1)));
  return [...compact, ...records.filter((r) => !r.id.startsWith("#"))];
}

/** The array rule (no horizon passed): compact records first, then the recent ones. */
function rememberInArray(records: AppliedRecord[], record: AppliedRecord): AppliedRecord[] {
  const next = records.slice();
  next.push(record);
  const firstRecent = next.findIndex((r) => !r.id.startsWith("#"));
  if (next.length - firstRecent > MAX_REMEMBERED_IDS)
    next[firstRecent] = compacted(next[firstRecent]!);
  const aging = next.length - 1 - MAX_REMEMBERED_ANSWERS;
  if (aging >= 0 && next[aging]!.entries !== null) next[aging] = { ...next[aging]!, entries: null };
  return next;
}

function record(n: number): AppliedRecord {
  const id = `e${n}`;
  const refused = n % 7 === 3;
  return {
    id,
    fingerprint: n * 1_000_003,
    entries: refused ? null : entriesOf(id),
    refusal: refused ? REFUSAL : null,
    atSec: 1_000_000 + n,
  };
}

const DAY_MS = 86_400_000;

function rememberRecord(m: IdMemory, r: AppliedRecord, horizonMs = DAY_MS): IdMemory {
  return m.remember(
    r.id,
    hash53(r.id),
    r.fingerprint,
    r.entries,
    r.refusal,
    r.atSec,
    r.atSec * 1000,
    horizonMs,
  );
}

describe("id memory", () => {
  it("equals the copied array after any appends from any earlier memory", () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { minLength: 1, maxLength: 300 }), (branches) => {
        // Each step appends to one of the memories made so far (a caller keeping an old state).
        const memories: IdMemory[] = [IdMemory.EMPTY];
        const arrays: AppliedRecord[][] = [[]];
        for (let n = 0; n < branches.length; n++) {
          const from =
            branches[n]! % 4 === 0 ? branches[n]! % memories.length : memories.length - 1;
          memories.push(rememberRecord(memories[from]!, record(n)));
          arrays.push(rememberInArray(arrays[from]!, record(n)));
        }
        for (let k = 0; k < memories.length; k++) {
          const m = memories[k]!;
          expect(m.toArray()).toEqual(compactInKeyOrder(arrays[k]!));
          const recent = arrays[k]!.filter((r) => !r.id.startsWith("#"));
          expect(m).toEqual(
            IdMemory.of(
              recent,
              recent.map((r) => hash53(r.id)),
              m.compact,
              m.clockMs,
            ),
          );
          for (let i = 0; i < m.length; i++) {
            const id = recent[i]!.id;
            expect(m.indexOf(id, hash53(id))).toBe(i);
          }
          for (let n = 0; n < branches.length; n++) {
            const compact = arrays[k]!.find((r) => r.id === `#${keyText(idKey(`e${n}`))}`);
            const found = m.findCompact(`e${n}`);
            expect(found?.fingerprint).toBe(compact?.fingerprint);
            expect(found?.refusal?.reason).toBe(compact?.refusal?.reason);
          }
          expect(m.indexOf("missing", hash53("missing"))).toBe(-1);
          expect(m.findCompact("missing")).toBeNull();
        }
      }),
    );
  });

  it("compares by records under toEqual, and writes them for JSON", () => {
    const a = rememberRecord(IdMemory.EMPTY, record(1));
    expect(a).toEqual(rememberRecord(IdMemory.EMPTY, record(1)));
    expect(a).not.toEqual(rememberRecord(IdMemory.EMPTY, { ...record(1), fingerprint: 5 }));
    expect(a).not.toEqual(rememberRecord(a, record(2)));
    expect(JSON.parse(JSON.stringify({ applied: a }))).toEqual({ applied: [record(1)] });
    expect(a.at(-1)).toEqual(record(1));
    expect(a.at(1)).toBeUndefined();
  });

  it("keeps every compact record the horizon has not passed, and drops the passed ones in batches", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 600 }), { minLength: 1, maxLength: 400 }),
        fc.integer({ min: 1, max: 300 }),
        (gaps, horizonSec) => {
          // Records at growing acceptance times (gaps in seconds), a horizon of horizonSec.
          let m = IdMemory.EMPTY;
          let atSec = 1_000_000;
          const times: number[] = [];
          for (let n = 0; n < gaps.length; n++) {
            atSec += gaps[n]!;
            times.push(atSec);
            m = rememberRecord(m, { ...record(n), atSec }, horizonSec * 1000);
          }
          const cutoffSec = atSec - horizonSec;
          const recentFrom = Math.max(0, gaps.length - MAX_REMEMBERED_IDS);
          for (let n = 0; n < recentFrom; n++) {
            const found = m.findCompact(`e${n}`);
            // Inside the horizon: always found. Past it by more than the slack: gone.
            if (times[n]! >= cutoffSec) expect(found).not.toBeNull();
            if (times[n]! * 8 < (cutoffSec - horizonSec / 8) * 8 - horizonSec)
              expect(found).toBeNull();
          }
          expect(m.clockMs).toBe(atSec * 1000);
        },
      ),
    );
  });
});
