// A 53-bit fingerprint of an input's content: the same id with other content is a conflict.

import type { EngineInput, UsageEvent } from "./types.ts";

export const HASH53_SEED1 = 0xdeadbeef | 0;
export const HASH53_SEED2 = 0x41c6ce57 | 0;
export const HASH53_M1 = 2654435761 | 0;
export const HASH53_M2 = 1597334677 | 0;

/** cyrb53: a fast non-cryptographic hash; collisions between two versions of one id are negligible. */
export function hash53(text: string): number {
  let h1 = HASH53_SEED1;
  let h2 = HASH53_SEED2;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, HASH53_M1);
    h2 = Math.imul(h2 ^ ch, HASH53_M2);
  }
  return finish53(h1, h2);
}

/**
 * cyrb53 carried to 64 bits: its two final 32-bit words (unsigned), the key of an id kept after
 * its text is dropped (compact-ids.ts). Two ids of one member collide with a chance of about
 * n^2 / 2^65 for n remembered ids (3e-12 for 10,000).
 */
export function hash64(text: string): [number, number] {
  let h1 = HASH53_SEED1;
  let h2 = HASH53_SEED2;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, HASH53_M1);
    h2 = Math.imul(h2 ^ ch, HASH53_M2);
  }
  let a = h1;
  let b = h2;
  a = Math.imul(a ^ (a >>> 16), 2246822507) ^ Math.imul(b ^ (b >>> 13), 3266489909);
  b = Math.imul(b ^ (b >>> 16), 2246822507) ^ Math.imul(a ^ (a >>> 13), 3266489909);
  return [b >>> 0, a >>> 0];
}

/** cyrb53's last step from the two running states. */
export function finish53(h1: number, h2: number): number {
  let a = h1;
  let b = h2;
  a = Math.imul(a ^ (a >>> 16), 2246822507) ^ Math.imul(b ^ (b >>> 13), 3266489909);
  b = Math.imul(b ^ (b >>> 16), 2246822507) ^ Math.imul(a ^ (a >>> 13), 3266489909);
  return 4294967296 * (2097151 & b) + (a >>> 0);
}

/** Field i of a usage event in canonical order (see `canonical`). */
function usageField(e: UsageEvent, i: number): unknown {
  switch (i) {
    case 0:
      return e.type;
    case 1:
      return e.id;
    case 2:
      return e.userId;
    case 3:
      return e.taskId;
    case 4:
      return e.feature;
    case 5:
      return e.taskKind;
    case 6:
      return e.model;
    case 7:
      return e.inputTokens;
    case 8:
      return e.outputTokens;
    case 9:
      return e.cachedInputTokens;
    default:
      return e.eventAtMs;
  }
}

const USAGE_FIELDS = 11;
const NULL_TEXT = "null";
const digits = new Uint8Array(20);

/**
 * hash53 of JSON.stringify(canonical(event)) for a usage event, computed without building the
 * text: strings JSON writes verbatim (no quote, backslash, control character or surrogate), null
 * and safe integers >= 0. Null when a value is outside these (the caller then builds the text).
 */
function usageFingerprint(e: UsageEvent): number | null {
  let h1 = Math.imul(0xdeadbeef ^ 0x5b, 2654435761); // [
  let h2 = Math.imul(0x41c6ce57 ^ 0x5b, 1597334677);
  for (let f = 0; f < USAGE_FIELDS; f++) {
    if (f > 0) {
      h1 = Math.imul(h1 ^ 0x2c, 2654435761); // ,
      h2 = Math.imul(h2 ^ 0x2c, 1597334677);
    }
    const v = usageField(e, f);
    if (typeof v === "string") {
      h1 = Math.imul(h1 ^ 0x22, 2654435761); // "
      h2 = Math.imul(h2 ^ 0x22, 1597334677);
      for (let i = 0; i < v.length; i++) {
        const ch = v.charCodeAt(i);
        if (ch < 0x20 || ch === 0x22 || ch === 0x5c || (ch >= 0xd800 && ch <= 0xdfff)) return null;
        h1 = Math.imul(h1 ^ ch, 2654435761);
        h2 = Math.imul(h2 ^ ch, 1597334677);
      }
      h1 = Math.imul(h1 ^ 0x22, 2654435761);
      h2 = Math.imul(h2 ^ 0x22, 1597334677);
    } else if (v === null) {
      for (let i = 0; i < 4; i++) {
        const ch = NULL_TEXT.charCodeAt(i);
        h1 = Math.imul(h1 ^ ch, 2654435761);
        h2 = Math.imul(h2 ^ ch, 1597334677);
      }
    } else if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) {
      // Two int32 halves (high digits, then the low 8 digits padded): integer ops only.
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
      while (n > 0) {
        const ch = 0x30 + digits[--n]!;
        h1 = Math.imul(h1 ^ ch, 2654435761);
        h2 = Math.imul(h2 ^ ch, 1597334677);
      }
    } else {
      return null;
    }
  }
  h1 = Math.imul(h1 ^ 0x5d, 2654435761); // ]
  h2 = Math.imul(h2 ^ 0x5d, 1597334677);
  return finish53(h1, h2);
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
