// Goal: the shared id memory behaves as the copied array it replaces: every state keeps the records
// it had (whatever is remembered after it, from it or from an older state), the oldest id goes at
// MAX_REMEMBERED_IDS, entries are kept for the last MAX_REMEMBERED_ANSWERS only, and two memories
// are equal (toEqual) exactly when their records are.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
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

/** The array rule the memory replaces (apply's former `remember`). */
function rememberInArray(records: AppliedRecord[], record: AppliedRecord): AppliedRecord[] {
  const next = records.slice();
  next.push(record);
  if (next.length > MAX_REMEMBERED_IDS) next.shift();
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
  };
}

function rememberRecord(m: IdMemory, r: AppliedRecord): IdMemory {
  return m.remember(r.id, hash53(r.id), r.fingerprint, r.entries, r.refusal);
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
          expect(m.toArray()).toEqual(arrays[k]);
          expect(m).toEqual(
            IdMemory.of(
              arrays[k]!,
              arrays[k]!.map((r) => hash53(r.id)),
            ),
          );
          for (let i = 0; i < m.length; i++) {
            const id = arrays[k]![i]!.id;
            expect(m.indexOf(id, hash53(id))).toBe(i);
          }
          expect(m.indexOf("missing", hash53("missing"))).toBe(-1);
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
});
