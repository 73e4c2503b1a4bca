// The ids a member sent before its recent ones, kept as fixed-width text until the duplicate
// horizon has passed them: what lets "one id, one effect" hold for a time, not for a count.
//
// One record is RECORD_CHARS characters of the state codec's base-64 digits (JSON-safe, so the
// codec copies the text as it is, never decoding a record it does not need):
//   [0, 12)  the id's 64-bit key (hash64: two 32-bit words, six digits each)
//   [12, 21) the content fingerprint (53 bits, nine digits)
//   [21, 27) the record's horizon time in whole seconds, rounded up (six digits)
//   [27]     0 when the input was applied, else 1 + the code of its refusal reason
// The records are kept in key order (the key as two numbers, high word first), so a lookup is a
// bisection of the stored text; the last ones appended wait in a short tail.

import { assert } from "./errors.ts";
import { hash64 } from "./fingerprint.ts";
import { REFUSAL_REASONS, type RefusalReason } from "./types.ts";

export const RECORD_CHARS = 28;
const KEY_CHARS = 12;
const FP_AT = 12;
const TIME_AT = 21;
const REFUSAL_AT = 27;
/** Records appended since the sorted run was last merged; merged into it when this many wait. */
const MAX_TAIL = 32;

const DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const DIGIT_CODES = Array.from(DIGITS, (c) => c.charCodeAt(0));
const DIGIT_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) DIGIT_VALUE[DIGITS.charCodeAt(i)] = i;

/** The number in `count` digits of `text` from `at`; -1 when a character is not a digit. */
function readFixed(text: string, at: number, count: number): number {
  let v = 0;
  for (let k = 0; k < count; k++) {
    const c = text.charCodeAt(at + k);
    const d = c < 128 ? DIGIT_VALUE[c]! : -1;
    if (d < 0) return -1;
    v = v * 64 + d;
  }
  return v;
}

/** The id's key: hash64 of its text, high and low word. */
export function idKey(id: string): [number, number] {
  return hash64(id);
}

/** The key's twelve characters in a record. */
export function keyText(key: readonly [number, number]): string {
  putFixed(key[0], 0, 6);
  putFixed(key[1], 6, 6);
  return String.fromCharCode(...recordCodes.slice(0, KEY_CHARS));
}

/** A record's character codes, written in place (one string made per record). */
const recordCodes = new Array<number>(RECORD_CHARS).fill(0);

/** `value` as `count` digit codes into recordCodes from `at`, most significant first. */
function putFixed(value: number, at: number, count: number): void {
  let v = value;
  for (let k = count - 1; k >= 0; k--) {
    const d = v % 64;
    recordCodes[at + k] = DIGIT_CODES[d]!;
    v = (v - d) / 64;
  }
  assert(v === 0, "value fits its digits");
}

export function compactRecord(
  key: readonly [number, number],
  fingerprint: number,
  atSec: number,
  refusal: RefusalReason | null,
): string {
  const code = refusal === null ? 0 : 1 + REFUSAL_REASONS.indexOf(refusal);
  assert(code >= 0, "refusal reason has a code");
  putFixed(key[0], 0, 6);
  putFixed(key[1], 6, 6);
  putFixed(fingerprint, FP_AT, 9);
  putFixed(atSec, TIME_AT, 6);
  recordCodes[REFUSAL_AT] = DIGIT_CODES[code]!;
  return String.fromCharCode(...recordCodes);
}

/** The parts of one record (for a repeat's answer, tests and the codec's checks). */
export interface CompactRecord {
  /** The key's twelve characters. */
  key: string;
  fingerprint: number;
  atSec: number;
  refusal: RefusalReason | null;
}

export function readRecord(record: string): CompactRecord | null {
  if (record.length !== RECORD_CHARS) return null;
  const fingerprint = readFixed(record, FP_AT, 9);
  const atSec = readFixed(record, TIME_AT, 6);
  const code = readFixed(record, REFUSAL_AT, 1);
  if (readFixed(record, 0, KEY_CHARS) < 0 || fingerprint < 0 || atSec < 0 || code < 0) return null;
  if (fingerprint > Number.MAX_SAFE_INTEGER || code > REFUSAL_REASONS.length) return null;
  return {
    key: record.slice(0, KEY_CHARS),
    fingerprint,
    atSec,
    refusal: code === 0 ? null : REFUSAL_REASONS[code - 1]!,
  };
}

/** The key at `at` of `text` against (hi, lo): negative, 0 or positive. */
function compareKeyAt(text: string, at: number, hi: number, lo: number): number {
  const h = readFixed(text, at, 6);
  if (h !== hi) return h - hi;
  return readFixed(text, at + 6, 6) - lo;
}

/** Index of the record with key (hi, lo) in `sorted` (records in key order), or -1. */
function searchSorted(sorted: string, hi: number, lo: number): number {
  let first = 0;
  let last = sorted.length / RECORD_CHARS - 1;
  while (first <= last) {
    const mid = (first + last) >>> 1;
    const at = mid * RECORD_CHARS;
    const c = compareKeyAt(sorted, at, hi, lo);
    if (c === 0) return at;
    if (c < 0) first = mid + 1;
    else last = mid - 1;
  }
  return -1;
}

/** Key order of two records (or key texts). */
export function byKey(a: string, b: string): number {
  return compareKeyAt(a, 0, readFixed(b, 0, 6), readFixed(b, 6, 6));
}

/** The records of `sorted` and `more` (any order) in one run in key order. */
function merged(sorted: string, more: readonly string[]): string {
  const adding = [...more].sort(byKey);
  const out: string[] = [];
  let at = 0;
  for (const r of adding) {
    // Copy the run of sorted records before r in one slice.
    const hi = readFixed(r, 0, 6);
    const lo = readFixed(r, 6, 6);
    let end = at;
    while (end < sorted.length && compareKeyAt(sorted, end, hi, lo) < 0) end += RECORD_CHARS;
    if (end > at) out.push(sorted.slice(at, end));
    out.push(r);
    at = end;
  }
  if (at < sorted.length) out.push(sorted.slice(at));
  return out.join("");
}

/**
 * The tail's write-once slots: slot i (i < used) never changes once written. Several CompactIds
 * may read one block (each its first `length` slots); only the one ending at `used` may write the
 * next slot, so appending is no copy (as the id memory's own slots, memory.ts).
 */
class TailBlock {
  readonly records: string[] = [];
  readonly hi: number[] = [];
  readonly lo: number[] = [];
  used = 0;

  push(record: string, hi: number, lo: number): void {
    this.records.push(record);
    this.hi.push(hi);
    this.lo.push(lo);
    this.used++;
  }
}

/**
 * Compact records: a run in key order (bisected, stored and read back as one string, never split
 * into records) and a tail of the last ones appended, merged into the run every MAX_TAIL. Never
 * changes; `append` returns a new one.
 */
export class CompactIds {
  /** Records in key order. */
  readonly sorted: string;
  readonly #block: TailBlock;
  /** This one's tail is the block's first tailLength slots. */
  readonly #tailLength: number;
  /** The smallest record time, in seconds (Infinity when empty): when pruning is due. */
  readonly minAtSec: number;

  private constructor(sorted: string, block: TailBlock, tailLength: number, minAtSec: number) {
    this.sorted = sorted;
    this.#block = block;
    this.#tailLength = tailLength;
    this.minAtSec = minAtSec;
  }

  static readonly EMPTY = new CompactIds("", new TailBlock(), 0, Number.POSITIVE_INFINITY);

  /**
   * Records as the codec stored them (the sorted run, the tail joined). Each record's characters
   * are checked when it is read (a lookup, a prune): the run is not parsed here.
   */
  static fromText(sorted: string, tail: string, minAtSec: number): CompactIds {
    if (sorted.length === 0 && tail.length === 0) return CompactIds.EMPTY;
    assert(sorted.length % RECORD_CHARS === 0, "compact ids are whole records");
    assert(tail.length % RECORD_CHARS === 0, "the tail is whole records");
    const block = new TailBlock();
    for (let at = 0; at < tail.length; at += RECORD_CHARS) {
      block.push(
        tail.slice(at, at + RECORD_CHARS),
        readFixed(tail, at, 6),
        readFixed(tail, at + 6, 6),
      );
    }
    return new CompactIds(sorted, block, block.used, minAtSec);
  }

  get count(): number {
    return this.sorted.length / RECORD_CHARS + this.#tailLength;
  }

  /** The tail's records, oldest first. */
  get tail(): readonly string[] {
    return this.#block.records.slice(0, this.#tailLength);
  }

  /** The record of the id with key (hi, lo), or null. */
  find(key: readonly [number, number]): string | null {
    const [hi, lo] = key;
    const b = this.#block;
    for (let i = this.#tailLength - 1; i >= 0; i--) {
      if (b.lo[i] === lo && b.hi[i] === hi) return b.records[i]!;
    }
    const at = searchSorted(this.sorted, hi, lo);
    return at < 0 ? null : this.sorted.slice(at, at + RECORD_CHARS);
  }

  /**
   * These records and one more, less every record older than `cutoffMs` once the oldest is more
   * than `slackMs` past it (records are dropped in batches, not one copy of the run per apply).
   */
  append(record: string, atSec: number, cutoffMs: number, slackMs: number): CompactIds {
    const minAtSec = Math.min(this.minAtSec, atSec);
    if (minAtSec * 1000 < cutoffMs - slackMs) return this.#pruned(record, cutoffMs);
    const hi = readFixed(record, 0, 6);
    const lo = readFixed(record, 6, 6);
    const n = this.#tailLength;
    if (n >= MAX_TAIL) {
      return new CompactIds(
        merged(this.sorted, [...this.tail, record]),
        new TailBlock(),
        0,
        minAtSec,
      );
    }
    let block = this.#block;
    if (block.used !== n) {
      // Another CompactIds wrote past this one's tail: a block of its own.
      const from = block;
      block = new TailBlock();
      for (let i = 0; i < n; i++) block.push(from.records[i]!, from.hi[i]!, from.lo[i]!);
    }
    block.push(record, hi, lo);
    return new CompactIds(this.sorted, block, n + 1, minAtSec);
  }

  #pruned(record: string, cutoffMs: number): CompactIds {
    const kept: string[] = [];
    let minAtSec = Number.POSITIVE_INFINITY;
    const keep = (text: string, at: number): void => {
      const atSec = readFixed(text, at + TIME_AT, 6);
      assert(atSec >= 0, "compact record time is digits");
      if (atSec * 1000 < cutoffMs) return;
      kept.push(text.slice(at, at + RECORD_CHARS));
      if (atSec < minAtSec) minAtSec = atSec;
    };
    const run = this.sorted;
    for (let at = 0; at < run.length; at += RECORD_CHARS) keep(run, at);
    const fromRun = kept.length;
    for (const r of this.tail) keep(r, 0);
    keep(record, 0);
    if (kept.length === 0) return CompactIds.EMPTY;
    const sorted = merged(kept.slice(0, fromRun).join(""), kept.slice(fromRun));
    return new CompactIds(sorted, new TailBlock(), 0, minAtSec);
  }

  /** Each record, in key order. */
  records(): string[] {
    const out: string[] = [];
    const all = merged(this.sorted, this.tail);
    for (let at = 0; at < all.length; at += RECORD_CHARS) {
      out.push(all.slice(at, at + RECORD_CHARS));
    }
    return out;
  }
}
