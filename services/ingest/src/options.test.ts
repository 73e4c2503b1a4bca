// Goal: the ingest's start-up checks and token matching: limits, the duplicate horizon and
// tokens are refused with the field named, CF_INGEST_TOKENS parses, and only a configured bearer
// token matches.
import {
  DEFAULT_DEDUPE_HORIZON_MS,
  MAX_DEDUPE_HORIZON_MS,
  MIN_DEDUPE_HORIZON_MS,
} from "@creditflow/engine";
import { describe, expect, it } from "vitest";
import { TokenVerifier } from "./auth.ts";
import {
  checkTokens,
  DEFAULT_INGEST_LIMITS,
  parseTokens,
  resolveDedupeHorizon,
  resolveLimits,
} from "./options.ts";

describe("ingest options", () => {
  it("resolves limits over the defaults and names a bad one", () => {
    expect(resolveLimits({ maxBatchEvents: 10 })).toEqual({
      ...DEFAULT_INGEST_LIMITS,
      maxBatchEvents: 10,
    });
    expect(() => resolveLimits({ maxBatchEvents: 0 })).toThrow(/limits\.maxBatchEvents/);
    expect(() => resolveLimits({ maxBodyBytes: 100 })).toThrow(/limits\.maxBodyBytes/);
  });

  it("takes the duplicate horizon or its default and names one out of range", () => {
    expect(resolveDedupeHorizon(undefined)).toBe(DEFAULT_DEDUPE_HORIZON_MS);
    expect(resolveDedupeHorizon(MIN_DEDUPE_HORIZON_MS)).toBe(MIN_DEDUPE_HORIZON_MS);
    expect(resolveDedupeHorizon(MAX_DEDUPE_HORIZON_MS)).toBe(MAX_DEDUPE_HORIZON_MS);
    for (const ms of [MIN_DEDUPE_HORIZON_MS - 1, MAX_DEDUPE_HORIZON_MS + 1, 1500.5, Number.NaN]) {
      expect(() => resolveDedupeHorizon(ms)).toThrow(/^dedupeHorizonMs: /);
    }
  });

  it("parses CF_INGEST_TOKENS and checks names and secrets", () => {
    const tokens = parseTokens("agent:aaaaaaaaaaaaaaaa1, chat:bbbbbbbbbbbbbbbb:2");
    expect(tokens).toEqual([
      { name: "agent", secret: "aaaaaaaaaaaaaaaa1" },
      { name: "chat", secret: "bbbbbbbbbbbbbbbb:2" },
    ]);
    expect(() => checkTokens(tokens, DEFAULT_INGEST_LIMITS)).not.toThrow();
    expect(() => parseTokens("no-colon")).toThrow(/tokens\.0/);
    expect(() => checkTokens([], DEFAULT_INGEST_LIMITS)).toThrow(/tokens/);
    const dup = [...tokens, { name: "agent", secret: "cccccccccccccccc" }];
    expect(() => checkTokens(dup, DEFAULT_INGEST_LIMITS)).toThrow(/tokens\.2\.name/);
    const sameSecret = [...tokens, { name: "x", secret: "aaaaaaaaaaaaaaaa1" }];
    expect(() => checkTokens(sameSecret, DEFAULT_INGEST_LIMITS)).toThrow(/tokens\.2\.secret/);
    expect(() =>
      checkTokens([{ name: "bad name", secret: "x".repeat(20) }], DEFAULT_INGEST_LIMITS),
    ).toThrow(/tokens\.0\.name/);
  });
});

describe("TokenVerifier", () => {
  const verifier = new TokenVerifier([
    { name: "agent", secret: "aaaaaaaaaaaaaaaa1" },
    { name: "chat", secret: "bbbbbbbbbbbbbbbb2" },
  ]);
  it("names the token of a configured bearer secret, and nothing else", () => {
    expect(verifier.verify("Bearer aaaaaaaaaaaaaaaa1")).toBe("agent");
    expect(verifier.verify("bearer bbbbbbbbbbbbbbbb2")).toBe("chat");
    expect(verifier.verify(undefined)).toBeNull();
    expect(verifier.verify("Bearer aaaaaaaaaaaaaaaa")).toBeNull();
    expect(verifier.verify("Basic aaaaaaaaaaaaaaaa1")).toBeNull();
    expect(verifier.verify("Bearer aaaaaaaaaaaaaaaa1 extra")).toBeNull();
  });
});
