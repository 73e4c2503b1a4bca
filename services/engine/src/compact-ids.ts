// The ids a member sent before its recent ones, kept as fixed-width text until the duplicate
// horizon has passed them: what lets "one id, one effect" hold for a time, not for a count.
//
// One record is RECORD_CHARS characters of the state codec's base-64 digits (JSON-safe, so the
// codec copies the text as it is, never decoding a record it does not need):
//   [0, 12)  the id's 64-bit key (hash64: two 32-bit words, six digits each)
//   [12, 21) the content fingerprint (53 bits, nine digits)
//   [21, 27) the record's horizon time in whole seconds, rounded up (six digits)
//   [27]     0 when the input was applied, else 1 + the code of its refusal reason
// A lookup is one indexOf of the key over the text (a match off a record boundary is skipped).

import { assert } from "./errors.ts";
import { hash64 } from "./fingerprint.ts";
import { REFUSAL_REASONS, type RefusalReason } from "./types.ts";

export const RECORD_CHARS = 28;
const KEY_CHARS = 12;
const FP_AT = 12;
const TIME_AT = 21;
const REFUSAL_AT = 27;
/** Records appended since the text was last joined; joined into it when this many wait. */
const MAX_PENDING = 64;

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

/** Index of the record with `key` in `text`, or -1 (matches that start inside a record skipped). */
function findKey(text: string, key: string): number {
  let at = text.indexOf(key);
  while (at >= 0 && at % RECORD_CHARS !== 0) at = text.indexOf(key, at + 1);
  return at;
}

/**
 * Compact records, oldest first: a joined text plus the few appended since. Never changes;
 * `append` returns a new one.
 */
export class CompactIds {
  /** Records joined, as read from the stored state or joined since. */
  readonly text: string;
  /** Records appended after `text`, oldest first (at most MAX_PENDING). */
  readonly #pending: readonly string[];
  /** The smallest record time, in seconds (Infinity when empty): when pruning is due. */
  readonly minAtSec: number;

  private constructor(text: string, pending: readonly string[], minAtSec: number) {
    this.text = text;
    this.#pending = pending;
    this.minAtSec = minAtSec;
  }

  static readonly EMPTY = new CompactIds("", [], Number.POSITIVE_INFINITY);

  /** Records as the codec stored them; throws when the text is not whole records. */
  static fromText(text: string, minAtSec: number): CompactIds {
    if (text.length === 0) return CompactIds.EMPTY;
    assert(text.length % RECORD_CHARS === 0, "compact ids are whole records");
    return new CompactIds(text, [], minAtSec);
  }

  get count(): number {
    return this.text.length / RECORD_CHARS + this.#pending.length;
  }

  /** Every record joined in one text, oldest first (what the codec writes). */
  joined(): string {
    return this.#pending.length === 0 ? this.text : this.text + this.#pending.join("");
  }

  /** The record of the id with `key`, or null. */
  find(key: string): string | null {
    const pending = this.#pending;
    for (let i = pending.length - 1; i >= 0; i--) {
      if (pending[i]!.startsWith(key)) return pending[i]!;
    }
    const at = findKey(this.text, key);
    return at < 0 ? null : this.text.slice(at, at + RECORD_CHARS);
  }

  /**
   * These records and one more, less every record older than `cutoffMs` once the oldest is more
   * than `slackMs` past it (records are dropped in batches, not one text copy per apply).
   */
  append(record: string, atSec: number, cutoffMs: number, slackMs: number): CompactIds {
    const minAtSec = Math.min(this.minAtSec, atSec);
    if (minAtSec * 1000 < cutoffMs - slackMs) return this.#pruned(record, cutoffMs);
    if (this.#pending.length < MAX_PENDING) {
      return new CompactIds(this.text, [...this.#pending, record], minAtSec);
    }
    return new CompactIds(this.joined() + record, [], minAtSec);
  }

  #pruned(record: string, cutoffMs: number): CompactIds {
    const all = this.joined() + record;
    const kept: string[] = [];
    let minAtSec = Number.POSITIVE_INFINITY;
    for (let at = 0; at < all.length; at += RECORD_CHARS) {
      const atSec = readFixed(all, at + TIME_AT, 6);
      assert(atSec >= 0, "compact record time is digits");
      if (atSec * 1000 < cutoffMs) continue;
      kept.push(all.slice(at, at + RECORD_CHARS));
      if (atSec < minAtSec) minAtSec = atSec;
    }
    return kept.length === 0 ? CompactIds.EMPTY : new CompactIds(kept.join(""), [], minAtSec);
  }

  /** Each record, oldest first. */
  records(): string[] {
    const all = this.joined();
    const out: string[] = [];
    for (let at = 0; at < all.length; at += RECORD_CHARS)
      out.push(all.slice(at, at + RECORD_CHARS));
    return out;
  }
}
