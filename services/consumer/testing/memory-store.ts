// An in-memory member store for unit tests of the unit of work (UnitStore of src/unit-store.ts):
// the same compare-and-set on the version, the same outbox fields (`x:<version>`, entries packed
// as the member store's README documents) and leftovers found at load, with two faults to inject:
// another writer moving a member's version between a load and a write (a CAS conflict), and a
// write that fails as a whole (Redis gone). Test code only; not part of the package door.

import type { LedgerEntryRecord } from "@creditflow/contracts";
import {
  decodeStoredState,
  type LoadedMember,
  MemberStoreError,
  type MemberWrite,
  type OutboxField,
  type WriteResult,
} from "@creditflow/member-store";
import type { UnitStore } from "../src/unit-store.ts";

/** A member as the in-memory store holds it (the fields of its Redis hash). */
export interface HeldMember {
  version: number;
  stateText: string | null;
  offsets: Map<string, bigint>;
  /** Outbox field (`x:<version>`) to its entries, as written and not released. */
  outbox: Map<string, Buffer[]>;
}

/**
 * Another writer, run on the member as stored just before our write of it lands: whatever it
 * changes, the store then moves the member's version by one, so our CAS is refused.
 */
export type Interference = (held: HeldMember, userId: string) => void;

/** The outbox field of the entries written at `version`. */
export function outboxFieldOf(version: number): string {
  return `x:${version}`;
}

/** A write's entries as one field value: each entry's length (4 bytes, big-endian), then its bytes. */
function packed(values: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const v of values) {
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(v.length);
    parts.push(length, v);
  }
  return Buffer.concat(parts);
}

function versionOf(field: string): number {
  return Number(field.slice(2));
}

/** A ledger record as JSON: readable back in tests with `decodeEntry`. */
export function encodeEntryAsJson(record: LedgerEntryRecord): Buffer {
  return Buffer.from(JSON.stringify(record));
}

export function decodeEntry(value: Buffer): LedgerEntryRecord {
  return JSON.parse(value.toString("utf8")) as LedgerEntryRecord;
}

export class MemoryMemberStore implements UnitStore {
  readonly membersPerRound: number;
  readonly encodeEntry = encodeEntryAsJson;
  readonly members = new Map<string, HeldMember>();
  /** Calls of load and write, and member writes refused by the CAS. */
  loads = 0;
  writes = 0;
  refused = 0;
  private readonly interference = new Map<string, { times: number; by: Interference }>();
  private readonly failures = new Map<number, Error>();

  constructor(membersPerRound = 250) {
    this.membersPerRound = membersPerRound;
  }

  /** The next `times` writes of the member find it changed by another writer (`by`). */
  interfere(userId: string, times: number, by: Interference = () => undefined): void {
    this.interference.set(userId, { times, by });
  }

  /**
   * The write call `calls` from now (1: the next one) fails as a whole with `error`, nothing of
   * it written; the calls before it succeed.
   */
  failWrite(
    calls = 1,
    error: Error = new MemberStoreError("redis_failed", "write members: connection lost"),
  ): void {
    this.failures.set(this.writes + calls, error);
  }

  /** The member as held (a new one, version 0, when never written). */
  held(userId: string): HeldMember {
    let m = this.members.get(userId);
    if (m === undefined) {
      m = { version: 0, stateText: null, offsets: new Map(), outbox: new Map() };
      this.members.set(userId, m);
    }
    return m;
  }

  async load(userIds: string[]): Promise<Map<string, LoadedMember>> {
    this.loads++;
    await Promise.resolve();
    const out = new Map<string, LoadedMember>();
    for (const userId of userIds) {
      const m = this.members.get(userId);
      if (m === undefined) {
        out.set(userId, {
          userId,
          version: 0,
          state: null,
          stateText: null,
          offsets: new Map(),
          leftovers: [],
        });
        continue;
      }
      const leftovers: OutboxField[] = [...m.outbox]
        .sort(([a], [b]) => versionOf(a) - versionOf(b))
        .map(([field, values]) => ({
          userId,
          field,
          packed: packed(values),
          count: values.length,
        }));
      out.set(userId, {
        userId,
        version: m.version,
        state: m.stateText === null ? null : decodeStoredState(userId, m.stateText),
        stateText: m.stateText,
        offsets: new Map(m.offsets),
        leftovers,
      });
    }
    return out;
  }

  async write(writes: MemberWrite[]): Promise<WriteResult[]> {
    const call = ++this.writes;
    await Promise.resolve();
    const failure = this.failures.get(call);
    if (failure !== undefined) throw failure;
    return writes.map((w): WriteResult => {
      const m = this.held(w.userId);
      const other = this.interference.get(w.userId);
      if (other !== undefined && other.times > 0) {
        other.times--;
        other.by(m, w.userId);
        m.version++;
      }
      if (m.version !== w.expectedVersion) {
        this.refused++;
        return { ok: false, userId: w.userId, currentVersion: m.version };
      }
      m.version++;
      m.stateText = w.stateText;
      for (const [field, offset] of w.offsets) m.offsets.set(field, offset);
      if (w.outbox.length === 0)
        return { ok: true, userId: w.userId, version: m.version, written: null };
      const field = outboxFieldOf(m.version);
      m.outbox.set(field, [...w.outbox]);
      return {
        ok: true,
        userId: w.userId,
        version: m.version,
        written: { userId: w.userId, field, packed: packed(w.outbox), count: w.outbox.length },
      };
    });
  }

  async release(fields: OutboxField[]): Promise<void> {
    await Promise.resolve();
    for (const f of fields) this.members.get(f.userId)?.outbox.delete(f.field);
  }
}
