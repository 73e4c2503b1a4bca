// A 53-bit fingerprint of an input's content: the same id with other content is a conflict.

import type { EngineInput, UsageEvent } from "./types.ts";

export const HASH53_SEED1 = 0xdeadbeef | 0;
export const HASH53_SEED2 = 0x41c6ce57 | 0;
export const HASH53_M1 = 2654435761 | 0;
export const HASH53_M2 = 1597334677 | 0;

/** cyrb53's two output words (high, low), written by finalWords: no hash allocates them. */
const words = new Int32Array(2);

/** cyrb53's last step: mixes its two running states into its two output words. */
function finalWords(h1: number, h2: number): void {
  const low = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  words[0] = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(low ^ (low >>> 13), 3266489909);
  words[1] = low;
}

/** cyrb53's 53-bit hash from its two running states: 21 bits of the high word, all of the low. */
export function finish53(h1: number, h2: number): number {
  finalWords(h1, h2);
  return 4294967296 * (2097151 & words[0]!) + (words[1]! >>> 0);
}

/** The decimal digits of one number, lowest first (Cyrb53.decimal). */
const digits = new Uint8Array(20);

/**
 * A character JSON.stringify writes escaped: a quote, a backslash, a control character; or a
 * surrogate (it escapes lone ones: any is left to the text form).
 */
function escapedByJson(ch: number): boolean {
  return ch < 0x20 || ch === 0x22 || ch === 0x5c || (ch >= 0xd800 && ch <= 0xdfff);
}

/**
 * cyrb53 (a fast non-cryptographic hash) fed piece by piece. Within a step its two running states
 * are locals; between steps, its two fields. One instance is reused for hash after hash.
 */
class Cyrb53 {
  private h1 = HASH53_SEED1;
  private h2 = HASH53_SEED2;

  /** Starts a new hash. */
  reset(): this {
    this.h1 = HASH53_SEED1;
    this.h2 = HASH53_SEED2;
    return this;
  }

  /** Feeds one character code. */
  char(ch: number): void {
    this.h1 = Math.imul(this.h1 ^ ch, HASH53_M1);
    this.h2 = Math.imul(this.h2 ^ ch, HASH53_M2);
  }

  /**
   * Feeds the characters of `text`. With `jsonVerbatim`, stops at a character JSON.stringify may
   * escape (escapedByJson) and answers false.
   */
  text(text: string, jsonVerbatim = false): boolean {
    let h1 = this.h1;
    let h2 = this.h2;
    for (let i = 0; i < text.length; i++) {
      const ch = text.charCodeAt(i);
      if (jsonVerbatim && escapedByJson(ch)) return false;
      h1 = Math.imul(h1 ^ ch, HASH53_M1);
      h2 = Math.imul(h2 ^ ch, HASH53_M2);
    }
    this.h1 = h1;
    this.h2 = h2;
    return true;
  }

  /** Feeds the decimal digits of a safe integer >= 0, with integer operations only. */
  decimal(v: number): void {
    // Two int32 halves: the high digits, then the low 8 digits padded with zeros.
    const high = Math.floor(v / 1e8) | 0; // < 2^31 for safe integers
    let low = (v - high * 1e8) | 0;
    let n = 0;
    if (high > 0) {
      for (let k = 0; k < 8; k++) {
        const q = (low / 10) | 0;
        digits[n++] = low - q * 10;
        low = q;
      }
      low = high;
    }
    do {
      const q = (low / 10) | 0;
      digits[n++] = low - q * 10;
      low = q;
    } while (low > 0);
    let h1 = this.h1;
    let h2 = this.h2;
    while (n > 0) {
      const ch = 0x30 + digits[--n]!;
      h1 = Math.imul(h1 ^ ch, HASH53_M1);
      h2 = Math.imul(h2 ^ ch, HASH53_M2);
    }
    this.h1 = h1;
    this.h2 = h2;
  }

  /** The 53-bit hash of what was fed. */
  hash53(): number {
    return finish53(this.h1, this.h2);
  }

  /** cyrb53 carried to 64 bits: its two output words (unsigned), high then low. */
  hash64(): [number, number] {
    finalWords(this.h1, this.h2);
    return [words[0]! >>> 0, words[1]! >>> 0];
  }
}

const textHash = new Cyrb53();

/** cyrb53: a fast non-cryptographic hash; collisions between two versions of one id are negligible. */
export function hash53(text: string): number {
  textHash.reset().text(text);
  return textHash.hash53();
}

/**
 * cyrb53 carried to 64 bits: its two final 32-bit words (unsigned), the key of an id kept after
 * its text is dropped (compact-ids.ts). Two ids of one member collide with a chance of about
 * n^2 / 2^65 for n remembered ids (3e-12 for 10,000).
 */
export function hash64(text: string): [number, number] {
  textHash.reset().text(text);
  return textHash.hash64();
}

/**
 * hash53 of a JSON array's text, fed value by value without building the text. It takes strings
 * JSON writes verbatim, null and safe integers >= 0; `add` answers false for any other value (the
 * caller then builds the text).
 */
class JsonArrayHash {
  private readonly hash = new Cyrb53();
  private values = 0;

  open(): this {
    this.hash.reset().char(0x5b); // [
    this.values = 0;
    return this;
  }

  add(v: unknown): boolean {
    const h = this.hash;
    if (this.values++ > 0) h.char(0x2c); // ,
    if (typeof v === "string") {
      h.char(0x22); // "
      if (!h.text(v, true)) return false;
      h.char(0x22);
      return true;
    }
    if (v === null) return h.text("null");
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) return false;
    h.decimal(v);
    return true;
  }

  close(): number {
    this.hash.char(0x5d); // ]
    return this.hash.hash53();
  }
}

const usageHash = new JsonArrayHash();

/** hash53 of JSON.stringify(canonical(event)) for a usage event, or null (see JsonArrayHash). */
function usageFingerprint(e: UsageEvent): number | null {
  const h = usageHash.open();
  const verbatim =
    h.add(e.type) &&
    h.add(e.id) &&
    h.add(e.userId) &&
    h.add(e.taskId) &&
    h.add(e.feature) &&
    h.add(e.taskKind) &&
    h.add(e.model) &&
    h.add(e.inputTokens) &&
    h.add(e.outputTokens) &&
    h.add(e.cachedInputTokens) &&
    h.add(e.eventAtMs);
  return verbatim ? h.close() : null;
}

/** Content in a fixed field order, so key order in the sender's object does not matter. */
function canonical(input: EngineInput): unknown[] {
  switch (input.type) {
    case "usage":
      return [
        input.type,
        input.id,
        input.userId,
        input.taskId,
        input.feature,
        input.taskKind,
        input.model,
        input.inputTokens,
        input.outputTokens,
        input.cachedInputTokens,
        input.eventAtMs,
      ];
    case "grant_bonus":
      return [
        input.type,
        input.id,
        input.userId,
        input.atMs,
        input.source,
        input.amountMicros,
        input.effectiveFromMs,
        input.expiresAtMs,
        input.priority,
        input.recurrence,
      ];
    case "subscription_start":
      return [input.type, input.id, input.userId, input.atMs, input.tierId, input.billing];
    case "subscription_change":
      return [input.type, input.id, input.userId, input.atMs, input.tierId];
    case "subscription_cancel":
      return [input.type, input.id, input.userId, input.atMs];
    case "revoke_grant":
      return [input.type, input.id, input.userId, input.atMs, input.grantId];
    case "adjust":
      return [
        input.type,
        input.id,
        input.userId,
        input.atMs,
        input.amountMicros,
        input.expiresAtMs,
        input.reason,
      ];
    case "migrate_legacy": {
      const uses = input.unusedUses ?? {};
      return [
        input.type,
        input.id,
        input.userId,
        input.atMs,
        Object.keys(uses)
          .sort()
          .map((k) => [k, uses[k]]),
      ];
    }
    default:
      return [(input as { type: unknown }).type, (input as { id: unknown }).id];
  }
}

/** The text form (every input type, every value): the definition the fast path must match. */
export function fingerprintText(input: EngineInput): string {
  return JSON.stringify(canonical(input));
}

export function fingerprintInput(input: EngineInput): number {
  if (input.type === "usage") {
    const fast = usageFingerprint(input);
    if (fast !== null) return fast;
  }
  return hash53(fingerprintText(input));
}
