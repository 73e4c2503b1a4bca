// Goal: a bad limit stops the consumer at start-up naming its field; every error code and
// dead-letter reason is documented in the README (a test fails when code and docs drift).

import { readFileSync } from "node:fs";
import { DEAD_LETTER_REASONS } from "@creditflow/contracts";
import { describe, expect, it } from "vitest";
import { CONSUMER_ERROR_CODES, ConsumerError } from "./errors.ts";
import { DEFAULT_LIMITS, resolveLimits } from "./options.ts";

describe("limits", () => {
  it("defaults are valid; a replica must acknowledge on a cluster, none on a single Redis", () => {
    expect(resolveLimits(undefined)).toEqual({ ...DEFAULT_LIMITS, minReplicaAcks: 0 });
    expect(resolveLimits(undefined, true)).toEqual({ ...DEFAULT_LIMITS, minReplicaAcks: 1 });
    expect(resolveLimits({ minReplicaAcks: 0 }, true).minReplicaAcks).toBe(0);
    expect(() => resolveLimits({ replicaAckTimeoutMs: 0 })).toThrow(/^limits\.replicaAckTimeoutMs/);
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
