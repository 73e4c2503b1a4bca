// The ids a member sent before its recent ones, kept as fixed-width text until the duplicate
// horizon has passed them: what lets "one id, one effect" hold for a time, not for a count.
//
// One record is RECORD_CHARS characters of the state codec's base-64 digits (JSON-safe, so the
// codec copies the text as it is, never decoding a record it does not need):
//   [0, 12)  the id's 64-bit key (hash64: two 32-bit words, six digits each)
//   [12, 21) the content fingerprint (53 bits, nine digits)
//   [21, 27) the record's horizon time in whole seconds, rounded up (six digits)
//   [27]     0 when the input was applied, else 1 + the code of its refusal reason
// The records are kept in key order, so a lookup is a bisection of the stored text.

import { assert } from "./errors.ts";
import { hash64 } from "./fingerprint.ts";
import { REFUSAL_REASONS, type RefusalReason } from "./types.ts";

export const RECORD_CHARS = 28;
const KEY_CHARS = 12;
const FP_AT = 12;
const TIME_AT = 21;
const REFUSAL_AT = 27;
/** Records appended since the sorted run was last merged; merged into it when this many wait. */
const MAX_TAIL = 256;

const DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const DIGIT_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) DIGIT_VALUE[DIGITS.charCodeAt(i)] = i;

/** `value` (a safe integer >= 0 below 64^count) as `count` digits, most significant first. */
function fixed(value: number, count: number): string {
  let v = value;
  let out = "";
  for (let k = 0; k < count; k++) {
    const d = v % 64;
    out = DIGITS[d]! + out;
    v = (v - d) / 64;
  }
  assert(v === 0, "value fits its digits");
  return out;
}

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

/** The twelve characters that stand for an id in a record. */
export function idKey(id: string): string {
  const [hi, lo] = hash64(id);
  return fixed(hi, 6) + fixed(lo, 6);
}

export function compactRecord(
  id: string,
  fingerprint: number,
  atSec: number,
  refusal: RefusalReason | null,
): string {
  const code = refusal === null ? 0 : 1 + REFUSAL_REASONS.indexOf(refusal);
  assert(code >= 0, "refusal reason has a code");
  return idKey(id) + fixed(fingerprint, 9) + fixed(atSec, 6) + DIGITS[code]!;
}

/** The parts of one record (for a repeat's answer, tests and the codec's checks). */
export interface CompactRecord {
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

/** Index of the record with `key` in `sorted` (records in key order), or -1: a binary search. */
function searchSorted(sorted: string, key: string): number {
  let lo = 0;
  let hi = sorted.length / RECORD_CHARS - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const at = mid * RECORD_CHARS;
    const c = compareKeyAt(sorted, at, key);
    if (c === 0) return at;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/** The key at `at` of `text` against `key`, in code unit order (no substring made). */
function compareKeyAt(text: string, at: number, key: string): number {
  for (let k = 0; k < KEY_CHARS; k++) {
    const d = text.charCodeAt(at + k) - key.charCodeAt(k);
    if (d !== 0) return d;
  }
  return 0;
}

/** The low word of a key (or of a record's key): its characters 6 to 12. */
function keyLow(keyOrRecord: string): number {
  return readFixed(keyOrRecord, 6, 6);
}

const byKey = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The records of `sorted` and `more` (any order) in one run in key order. */
function merged(sorted: string, more: readonly string[]): string {
  const adding = [...more].sort(byKey);
  const out: string[] = [];
  let at = 0;
  for (const r of adding) {
    // Copy the run of sorted records before r in one slice.
    let end = at;
    while (end < sorted.length && compareKeyAt(sorted, end, r) < 0) end += RECORD_CHARS;
    if (end > at) out.push(sorted.slice(at, end));
    out.push(r);
    at = end;
  }
  if (at < sorted.length) out.push(sorted.slice(at));
  return out.join("");
}

/**
 * Compact records: a run in key order (searched by bisection, stored and read back as one string,
 * never split into records) and a short tail of the last ones appended, merged into the run every
 * MAX_TAIL. Never changes; `append` returns a new one.
 */
export class CompactIds {
  /** Records in key order. */
  readonly sorted: string;
  /** Records appended after `sorted` was made, oldest first (at most MAX_TAIL). */
  readonly tail: readonly string[];
  /** The low word of each tail record's key: scanned as numbers before a record is compared. */
  readonly #tailLow: readonly number[];
  /** The smallest record time, in seconds (Infinity when empty): when pruning is due. */
  readonly minAtSec: number;

  private constructor(
    sorted: string,
    tail: readonly string[],
    tailLow: readonly number[],
    minAtSec: number,
  ) {
    this.sorted = sorted;
    this.tail = tail;
    this.#tailLow = tailLow;
    this.minAtSec = minAtSec;
  }

  static readonly EMPTY = new CompactIds("", [], [], Number.POSITIVE_INFINITY);

  /**
   * Records as the codec stored them (the sorted run, the tail joined). Each record's characters
   * are checked when it is read (a lookup, a prune): the run is not parsed here.
   */
  static fromText(sorted: string, tail: string, minAtSec: number): CompactIds {
    if (sorted.length === 0 && tail.length === 0) return CompactIds.EMPTY;
    assert(sorted.length % RECORD_CHARS === 0, "compact ids are whole records");
    assert(tail.length % RECORD_CHARS === 0 && tail.length <= MAX_TAIL * RECORD_CHARS, "tail fits");
    const records: string[] = [];
    for (let at = 0; at < tail.length; at += RECORD_CHARS) {
      records.push(tail.slice(at, at + RECORD_CHARS));
    }
    return new CompactIds(sorted, records, records.map(keyLow), minAtSec);
  }

  get count(): number {
    return this.sorted.length / RECORD_CHARS + this.tail.length;
  }

  /** The record of the id with `key`, or null. */
  find(key: string): string | null {
    const tail = this.tail;
    const low = this.#tailLow;
    const wanted = keyLow(key);
    for (let i = tail.length - 1; i >= 0; i--) {
      if (low[i] === wanted && tail[i]!.startsWith(key)) return tail[i]!;
    }
    const at = searchSorted(this.sorted, key);
    return at < 0 ? null : this.sorted.slice(at, at + RECORD_CHARS);
  }

  /**
   * These records and one more, less every record older than `cutoffMs` once the oldest is more
   * than `slackMs` past it (records are dropped in batches, not one copy of the run per apply).
   */
  append(record: string, atSec: number, cutoffMs: number, slackMs: number): CompactIds {
    const minAtSec = Math.min(this.minAtSec, atSec);
    const tail = [...this.tail, record];
    if (minAtSec * 1000 < cutoffMs - slackMs) return this.#pruned(tail, cutoffMs);
    if (tail.length <= MAX_TAIL) {
      return new CompactIds(this.sorted, tail, [...this.#tailLow, keyLow(record)], minAtSec);
    }
    return new CompactIds(merged(this.sorted, tail), [], [], minAtSec);
  }

  #pruned(tail: readonly string[], cutoffMs: number): CompactIds {
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
    const fromSorted = kept.length;
    for (const r of tail) keep(r, 0);
    if (kept.length === 0) return CompactIds.EMPTY;
    const sorted = merged(kept.slice(0, fromSorted).join(""), kept.slice(fromSorted));
    return new CompactIds(sorted, [], [], minAtSec);
  }

  /** Each record, in key order. */
  records(): string[] {
    const out: string[] = [];
    const all = merged(this.sorted, this.tail);
    for (let at = 0; at < all.length; at += RECORD_CHARS)
      out.push(all.slice(at, at + RECORD_CHARS));
    return out;
  }
}
