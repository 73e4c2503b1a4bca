// Goal: a bad limit stops the consumer at start-up naming its field; every error code and
// dead-letter reason is documented in the README (a test fails when code and docs drift); all
// keys of one member share its hash tag (one Redis Cluster slot for the atomic write).

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DEAD_LETTER_REASONS } from "./classify.ts";
import { CONSUMER_ERROR_CODES, ConsumerError } from "./errors.ts";
import { keySpace } from "./keys.ts";
import { DEFAULT_LIMITS, resolveLimits } from "./options.ts";

describe("limits", () => {
  it("defaults are valid", () => {
    expect(resolveLimits(undefined)).toEqual(DEFAULT_LIMITS);
  });
  it("refuses an out-of-range limit naming the field", () => {
    const error = (() => {
      try {
        resolveLimits({ batchRecords: 0 });
      } catch (e) {
        return e;
      }
    })() as ConsumerError;
    expect(error).toBeInstanceOf(ConsumerError);
    expect(error.code).toBe("invalid_options");
    expect(error.message).toMatch(/^limits\.batchRecords/);
    expect(() => resolveLimits({ heartbeatIntervalMs: 5_000, sessionTimeoutMs: 10_000 })).toThrow(
      /heartbeatIntervalMs/,
    );
    expect(() => resolveLimits({ rebalanceTimeoutMs: 20_000, sessionTimeoutMs: 30_000 })).toThrow(
      /^limits\.rebalanceTimeoutMs: must be at least limits\.sessionTimeoutMs/,
    );
    expect(() => resolveLimits({ unknown: 1 } as never)).toThrow(ConsumerError);
  });
});

describe("docs", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  it("names every dead-letter reason and every error code", () => {
    for (const reason of DEAD_LETTER_REASONS) expect(readme).toContain(`\`${reason}\``);
    for (const code of Object.keys(CONSUMER_ERROR_CODES)) expect(readme).toContain(`\`${code}\``);
  });
});

describe("keys", () => {
  it("puts a member's hash (outbox included) under the member's hash tag", () => {
    const k = keySpace("cf:").member("u:42");
    expect(k.member.match(/\{([^}]*)\}/)?.[1]).toBe("u:42");
    const ks = keySpace("cf:");
    expect(ks.deadlines.match(/\{([^}]*)\}/)?.[1]).toBe(
      ks.deadlineVersions.match(/\{([^}]*)\}/)?.[1],
    );
  });
});
