// A member's memory of input ids for the duplicate horizon: the recent ones (MAX_REMEMBERED_IDS,
// oldest first) with their text and first answer (their refusal, or for the last
// MAX_REMEMBERED_ANSWERS their ledger entries), and older ones as compact records (compact-ids.ts)
// until the horizon has passed them. Shared between successive states instead of copied on every
// apply: one IdMemory never changes, and remembering an id returns a new one that writes into the
// same write-once slots when it can.
//
// The horizon's clock is the member's acceptance clock: the latest time an input of the member was
// accepted (its Kafka timestamp), never the processing clock, so a consumer that is a day behind
// prunes and refuses nothing it would not have pruned or refused on time.

import { CompactIds, compactRecord, idKey, readRecord } from "./compact-ids.ts";
import { MAX_REMEMBERED_ANSWERS, MAX_REMEMBERED_IDS } from "./limits.ts";
import type { AppliedRecord, LedgerEntry, Refusal } from "./types.ts";

/** Free slots a new slot block gets past the ids it starts with (appends before the next copy). */
const SLACK = 32;
/** Free slots of a decoded memory: the consumer applies a few inputs and stores it again. */
const DECODE_SLACK = 8;

/**
 * Write-once slots: slot i (i < used) never changes once written. Several memories may read one
 * block (each its own range); only the memory ending at `used` may write the next slot.
 */
class Slots {
  // Plain arrays, not typed arrays: these are small, and a typed array over 64 bytes keeps its
  // data outside the heap (slower to make and to reach).
  readonly ids: string[];
  /** Fingerprints (53-bit integers: an array of doubles). */
  readonly fingerprints: number[];
  /** The low 30 bits of hash53(id) (small integers): a flat array scanned before comparing any id. */
  readonly hashes: number[];
  /** Each record's horizon time: max(its own time, its acceptance time), whole seconds rounded up. */
  readonly times: number[];
  /** Refusals by slot, created at the first one (most inputs are not refused). */
  refusals: (Refusal | null)[] | null = null;
  used = 0;
  readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.ids = new Array<string>(capacity).fill("");
    this.fingerprints = new Array<number>(capacity).fill(0.5);
    this.hashes = new Array<number>(capacity).fill(0);
    this.times = new Array<number>(capacity).fill(0);
  }

  refusal(slot: number): Refusal | null {
    return this.refusals === null ? null : (this.refusals[slot] ?? null);
  }

  setRefusal(slot: number, refusal: Refusal | null): void {
    if (refusal === null) return;
    this.refusals ??= new Array<Refusal | null>(this.capacity).fill(null);
    this.refusals[slot] = refusal;
  }
}

/** The bits of hash53(id) kept in the slots (a small integer for V8). */
const HASH_MASK = 0x3fffffff;

const NO_ANSWERS: readonly (LedgerEntry[] | null)[] = [];

/**
 * The remembered ids of one state, oldest first: iterable as `AppliedRecord`s (and compared by
 * them: the slots are private). Never changes; `remember` returns a new memory.
 */
export class IdMemory implements Iterable<AppliedRecord> {
  readonly #slots: Slots | null;
  /** This memory's ids are slots [end - length, end). */
  readonly #end: number;
  readonly #length: number;
  /** The entries of the last answers (null for a refusal), oldest first: the last min(length, MAX_REMEMBERED_ANSWERS) records. */
  readonly #answers: readonly (LedgerEntry[] | null)[];
  /** The ids older than the recent ones, inside the horizon. */
  readonly compact: CompactIds;
  /** The member's acceptance clock: the latest acceptance time of a remembered input, epoch ms (0: none). */
  readonly clockMs: number;

  private constructor(
    slots: Slots | null,
    end: number,
    length: number,
    answers: readonly (LedgerEntry[] | null)[],
    compact: CompactIds,
    clockMs: number,
  ) {
    this.#slots = slots;
    this.#end = end;
    this.#length = length;
    this.#answers = answers;
    this.compact = compact;
    this.clockMs = clockMs;
  }

  static readonly EMPTY: IdMemory = new IdMemory(null, 0, 0, NO_ANSWERS, CompactIds.EMPTY, 0);

  /** A memory holding `records` (oldest first) with their ids' hash53 values. */
  static of(
    records: readonly AppliedRecord[],
    idHashes: readonly number[],
    compact: CompactIds = CompactIds.EMPTY,
    clockMs = 0,
  ): IdMemory {
    const b = new MemoryBuilder(records.length);
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      b.add(r.id, idHashes[i]!, r.fingerprint, r.atSec);
      b.setRefusal(i, r.refusal);
      b.setEntries(i, r.entries);
    }
    return b.finish(compact, clockMs);
  }

  /** Built by MemoryBuilder only. */
  static fromSlots(
    slots: Slots,
    answers: (LedgerEntry[] | null)[],
    compact: CompactIds,
    clockMs: number,
  ): IdMemory {
    const n = slots.used;
    if (n === 0 && compact.count === 0 && clockMs === 0) return IdMemory.EMPTY;
    return new IdMemory(n === 0 ? null : slots, n, n, answers, compact, clockMs);
  }

  /** How many recent ids (with their text) this memory holds; `compact` holds the older ones. */
  get length(): number {
    return this.#length;
  }

  /** The compact record of `id` (an id older than the recent ones, inside the horizon), or null. */
  findCompact(id: string): { fingerprint: number; refusal: Refusal | null } | null {
    if (this.compact.count === 0) return null;
    const found = this.compact.find(idKey(id));
    if (found === null) return null;
    const r = readRecord(found);
    if (r === null) return null;
    // The first refusal's words are not kept for an older id: its reason is.
    const refusal: Refusal | null =
      r.refusal === null
        ? null
        : { reason: r.refusal, field: null, message: `id ${id} was refused before (${r.refusal})` };
    return { fingerprint: r.fingerprint, refusal };
  }

  /** Record index (0 = oldest) of `id` with hash53 `idHash`, or -1. */
  indexOf(id: string, idHash: number): number {
    const slots = this.#slots;
    if (slots === null) return -1;
    const hashes = slots.hashes;
    const ids = slots.ids;
    const h = idHash & HASH_MASK;
    const first = this.#end - this.#length;
    for (let s = this.#end - 1; s >= first; s--) {
      if (hashes[s] === h && ids[s] === id) return s - first;
    }
    return -1;
  }

  idAt(i: number): string {
    return this.#slots!.ids[this.#end - this.#length + i]!;
  }

  fingerprintAt(i: number): number {
    return this.#slots!.fingerprints[this.#end - this.#length + i]!;
  }

  refusalAt(i: number): Refusal | null {
    return this.#slots!.refusal(this.#end - this.#length + i);
  }

  atSecAt(i: number): number {
    return this.#slots!.times[this.#end - this.#length + i]!;
  }

  /** The entries of record i's answer, or null (a refusal, or older than the last answers). */
  entriesAt(i: number): LedgerEntry[] | null {
    const k = i - (this.#length - this.#answers.length);
    return k >= 0 ? this.#answers[k]! : null;
  }

  /**
   * This memory with one more record: when the recent ids are full the oldest becomes a compact
   * record (and compact records the horizon has passed go), and the answer that ages out of the
   * last MAX_REMEMBERED_ANSWERS drops its entries. This memory stays as it was.
   * `atSec`: the record's horizon time; `acceptedAtMs`: when the input was accepted.
   */
  remember(
    id: string,
    idHash: number,
    fingerprint: number,
    entries: LedgerEntry[] | null,
    refusal: Refusal | null,
    atSec: number,
    acceptedAtMs: number,
    horizonMs: number,
  ): IdMemory {
    const length = this.#length;
    const newLength = length < MAX_REMEMBERED_IDS ? length + 1 : length;
    const keep = newLength - 1;
    const clockMs = Math.max(this.clockMs, acceptedAtMs);
    let compact = this.compact;
    if (newLength === length) {
      // The oldest recent id leaves its text behind.
      const oldest = this.#end - length;
      const from = this.#slots!;
      const oldestAtSec = from.times[oldest]!;
      const record = compactRecord(
        idKey(from.ids[oldest]!),
        from.fingerprints[oldest]!,
        oldestAtSec,
        from.refusal(oldest)?.reason ?? null,
      );
      // Pruned in batches: an eighth of the horizon past the cutoff before the text is copied.
      compact = compact.append(record, oldestAtSec, clockMs - horizonMs, horizonMs / 8);
    }
    let slots = this.#slots;
    let end = this.#end;
    if (slots === null || slots.used !== end || end === slots.capacity) {
      // Another memory wrote past this one, or the block is full: a new block with the ids kept.
      const from = slots;
      slots = new Slots(keep + 1 + SLACK);
      if (from !== null && keep > 0) {
        const start = end - keep;
        for (let k = 0; k < keep; k++) {
          slots.ids[k] = from.ids[start + k]!;
          slots.fingerprints[k] = from.fingerprints[start + k]!;
          slots.hashes[k] = from.hashes[start + k]!;
          slots.times[k] = from.times[start + k]!;
        }
        if (from.refusals !== null) {
          for (let k = 0; k < keep; k++) slots.setRefusal(k, from.refusals[start + k] ?? null);
        }
      }
      end = keep;
    }
    slots.ids[end] = id;
    slots.fingerprints[end] = fingerprint;
    slots.hashes[end] = idHash & HASH_MASK;
    slots.times[end] = atSec;
    slots.setRefusal(end, refusal);
    slots.used = end + 1;

    const old = this.#answers;
    const kept = Math.min(old.length, MAX_REMEMBERED_ANSWERS - 1);
    const answers = new Array<LedgerEntry[] | null>(kept + 1);
    for (let k = 0; k < kept; k++) answers[k] = old[old.length - kept + k]!;
    answers[kept] = entries;
    return new IdMemory(slots, end + 1, newLength, answers, compact, clockMs);
  }

  /** Record i (0 = oldest; negative counts from the newest), as a new object. */
  at(index: number): AppliedRecord | undefined {
    const i = index < 0 ? this.#length + index : index;
    if (!(i >= 0 && i < this.#length)) return undefined;
    return {
      id: this.idAt(i),
      fingerprint: this.fingerprintAt(i),
      entries: this.entriesAt(i),
      refusal: this.refusalAt(i),
      atSec: this.atSecAt(i),
    };
  }

  /**
   * Every record, oldest first: the compact ones (id `#<key>`, no entries, a refusal by its reason
   * only), then the recent ones. toEqual compares memories by these.
   */
  *[Symbol.iterator](): Iterator<AppliedRecord> {
    for (const record of this.compact.records()) {
      const r = readRecord(record)!;
      yield {
        id: `#${r.key}`,
        fingerprint: r.fingerprint,
        entries: null,
        refusal: r.refusal === null ? null : { reason: r.refusal, field: null, message: "" },
        atSec: r.atSec,
      };
    }
    for (let i = 0; i < this.#length; i++) yield this.at(i)!;
  }

  toArray(): AppliedRecord[] {
    return [...this];
  }

  map<T>(fn: (record: AppliedRecord, index: number) => T): T[] {
    return this.toArray().map(fn);
  }

  find(predicate: (record: AppliedRecord, index: number) => boolean): AppliedRecord | undefined {
    return this.toArray().find(predicate);
  }

  /** JSON.stringify writes the records, as it did when the memory was an array. */
  toJSON(): AppliedRecord[] {
    return this.toArray();
  }
}

/** Fills a new memory record by record (the codec's decoder). */
export class MemoryBuilder {
  readonly #slots: Slots;
  readonly #count: number;
  /** Entries of the last min(count, MAX_REMEMBERED_ANSWERS) records. */
  readonly #answers: (LedgerEntry[] | null)[];

  constructor(count: number) {
    this.#slots = new Slots(count + DECODE_SLACK);
    this.#count = count;
    this.#answers = new Array<LedgerEntry[] | null>(Math.min(count, MAX_REMEMBERED_ANSWERS)).fill(
      null,
    );
  }

  /** The next record, in order. */
  add(id: string, idHash: number, fingerprint: number, atSec: number): void {
    const slots = this.#slots;
    const i = slots.used;
    slots.ids[i] = id;
    slots.hashes[i] = idHash & HASH_MASK;
    slots.fingerprints[i] = fingerprint;
    slots.times[i] = atSec;
    slots.used = i + 1;
  }

  setRefusal(i: number, refusal: Refusal | null): void {
    this.#slots.setRefusal(i, refusal);
  }

  /** Entries are kept for the last answers only (older ones are already in the ledger). */
  setEntries(i: number, entries: LedgerEntry[] | null): void {
    const k = i - (this.#count - this.#answers.length);
    if (k >= 0) this.#answers[k] = entries;
  }

  finish(compact: CompactIds, clockMs: number): IdMemory {
    return IdMemory.fromSlots(this.#slots, this.#answers, compact, clockMs);
  }
}
