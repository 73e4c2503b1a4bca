// A member's memory of recent input ids (MAX_REMEMBERED_IDS, oldest first), with the first answer
// of each: its refusal, or for the last MAX_REMEMBERED_ANSWERS its ledger entries. Shared between
// successive states instead of copied on every apply: one IdMemory never changes, and remembering
// an id returns a new one that writes into the same write-once slots when it can.

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
  /** Refusals by slot, created at the first one (most inputs are not refused). */
  refusals: (Refusal | null)[] | null = null;
  used = 0;
  readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.ids = new Array<string>(capacity).fill("");
    this.fingerprints = new Array<number>(capacity).fill(0.5);
    this.hashes = new Array<number>(capacity).fill(0);
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

  private constructor(
    slots: Slots | null,
    end: number,
    length: number,
    answers: readonly (LedgerEntry[] | null)[],
  ) {
    this.#slots = slots;
    this.#end = end;
    this.#length = length;
    this.#answers = answers;
  }

  static readonly EMPTY: IdMemory = new IdMemory(null, 0, 0, NO_ANSWERS);

  /** A memory holding `records` (oldest first) with their ids' hash53 values. */
  static of(records: readonly AppliedRecord[], idHashes: readonly number[]): IdMemory {
    const b = new MemoryBuilder(records.length);
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      b.add(r.id, idHashes[i]!, r.fingerprint);
      b.setRefusal(i, r.refusal);
      b.setEntries(i, r.entries);
    }
    return b.finish();
  }

  /** Built by MemoryBuilder only. */
  static fromSlots(slots: Slots, answers: (LedgerEntry[] | null)[]): IdMemory {
    const n = slots.used;
    return n === 0 ? IdMemory.EMPTY : new IdMemory(slots, n, n, answers);
  }

  get length(): number {
    return this.#length;
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

  /** The entries of record i's answer, or null (a refusal, or older than the last answers). */
  entriesAt(i: number): LedgerEntry[] | null {
    const k = i - (this.#length - this.#answers.length);
    return k >= 0 ? this.#answers[k]! : null;
  }

  /**
   * This memory with one more record: the oldest id goes when full, and the answer that ages out
   * of the last MAX_REMEMBERED_ANSWERS drops its entries. This memory stays as it was.
   */
  remember(
    id: string,
    idHash: number,
    fingerprint: number,
    entries: LedgerEntry[] | null,
    refusal: Refusal | null,
  ): IdMemory {
    const length = this.#length;
    const newLength = length < MAX_REMEMBERED_IDS ? length + 1 : length;
    const keep = newLength - 1;
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
    slots.setRefusal(end, refusal);
    slots.used = end + 1;

    const old = this.#answers;
    const kept = Math.min(old.length, MAX_REMEMBERED_ANSWERS - 1);
    const answers = new Array<LedgerEntry[] | null>(kept + 1);
    for (let k = 0; k < kept; k++) answers[k] = old[old.length - kept + k]!;
    answers[kept] = entries;
    return new IdMemory(slots, end + 1, newLength, answers);
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
    };
  }

  *[Symbol.iterator](): Iterator<AppliedRecord> {
    for (let i = 0; i < this.#length; i++) yield this.at(i)!;
  }

  toArray(): AppliedRecord[] {
    const out: AppliedRecord[] = [];
    for (let i = 0; i < this.#length; i++) out.push(this.at(i)!);
    return out;
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
  add(id: string, idHash: number, fingerprint: number): void {
    const slots = this.#slots;
    const i = slots.used;
    slots.ids[i] = id;
    slots.hashes[i] = idHash & HASH_MASK;
    slots.fingerprints[i] = fingerprint;
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

  finish(): IdMemory {
    return IdMemory.fromSlots(this.#slots, this.#answers);
  }
}
