// Goal: a `name:secret,…` variable parses into named credentials, and the start-up check refuses,
// naming the field, too many tokens, a bad or repeated name, a short or long secret, and a secret
// that repeats another (or a secret the service holds besides).
import { OptionError } from "@creditflow/engine";
import { describe, expect, it } from "vitest";
import {
  checkNamedTokens,
  MAX_SECRET_LENGTH,
  MIN_SECRET_LENGTH,
  parseNamedTokens,
} from "./tokens.ts";

class SampleOptionError extends OptionError {}

const fielded = (...tokens: { name: string; secret: string }[]) =>
  tokens.map((token, i) => ({ token, field: `serviceTokens.${i}` }));
const check =
  (tokens: ReturnType<typeof fielded>, otherSecrets: string[] = []) =>
  () =>
    checkNamedTokens(tokens, { maxTokens: 3, otherSecrets }, SampleOptionError);

describe("parseNamedTokens", () => {
  it("splits name:secret pairs at the first colon and trims them", () => {
    expect(parseNamedTokens(" a:s3cret:x , b:other", "serviceTokens", SampleOptionError)).toEqual([
      { name: "a", secret: "s3cret:x" },
      { name: "b", secret: "other" },
    ]);
    expect(parseNamedTokens(undefined, "serviceTokens", SampleOptionError)).toEqual([]);
    expect(parseNamedTokens("  ", "serviceTokens", SampleOptionError)).toEqual([]);
  });

  it("refuses a pair without a name, naming it by its index", () => {
    expect(() => parseNamedTokens("a:s,:s", "adminTokens", SampleOptionError)).toThrow(
      new SampleOptionError("adminTokens.1", "expected name:secret"),
    );
  });
});

describe("checkNamedTokens", () => {
  const secret = "s".repeat(MIN_SECRET_LENGTH);

  it("takes well-formed unique names with long distinct secrets", () => {
    expect(
      check(fielded({ name: "billing", secret }, { name: "ops.2", secret: `${secret}2` })),
    ).not.toThrow();
  });

  it("refuses each way a credential is unsafe, naming the field", () => {
    const short = "s".repeat(MIN_SECRET_LENGTH - 1);
    const long = "s".repeat(MAX_SECRET_LENGTH + 1);
    const cases: [ReturnType<typeof fielded>, string[], string][] = [
      [
        fielded(
          { name: "a", secret },
          { name: "b", secret: `${secret}b` },
          { name: "c", secret: `${secret}c` },
          { name: "d", secret: `${secret}d` },
        ),
        [],
        "tokens: at most 3 tokens",
      ],
      [
        fielded({ name: "bad name", secret }),
        [],
        "serviceTokens.0.name: 1 to 64 characters of [A-Za-z0-9._-]",
      ],
      [
        fielded({ name: "a", secret: short }),
        [],
        `serviceTokens.0.secret: ${MIN_SECRET_LENGTH} to ${MAX_SECRET_LENGTH} characters`,
      ],
      [
        fielded({ name: "a", secret: long }),
        [],
        `serviceTokens.0.secret: ${MIN_SECRET_LENGTH} to ${MAX_SECRET_LENGTH} characters`,
      ],
      [
        fielded({ name: "a", secret }, { name: "a", secret: `${secret}2` }),
        [],
        "serviceTokens.1.name: names must be unique",
      ],
      [
        fielded({ name: "a", secret }, { name: "b", secret }),
        [],
        "serviceTokens.1.secret: secrets must be distinct",
      ],
      [
        fielded({ name: "a", secret }),
        [secret],
        "serviceTokens.0.secret: secrets must be distinct",
      ],
    ];
    for (const [tokens, otherSecrets, message] of cases) {
      expect(check(tokens, otherSecrets)).toThrow(message);
      expect(check(tokens, otherSecrets)).toThrow(SampleOptionError);
    }
  });
});
