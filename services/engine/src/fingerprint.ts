// A 53-bit fingerprint of an input's content: the same id with other content is a conflict.

import type { EngineInput } from "./types.ts";

/** cyrb53: a fast non-cryptographic hash; collisions between two versions of one id are negligible. */
export function hash53(text: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
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

export function fingerprintInput(input: EngineInput): number {
  return hash53(JSON.stringify(canonical(input)));
}
