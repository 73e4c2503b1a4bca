// Goal: a service's limits are its defaults with the caller's values over them, and the first
// value out of its range, or not a limit at all, is refused by the service's OptionError naming it.
import { OptionError } from "@creditflow/engine";
import { Type } from "@sinclair/typebox";
import { describe, expect, it } from "vitest";
import { resolveNamedLimits } from "./limits.ts";

class SampleOptionError extends OptionError {}

const Schema = Type.Object(
  {
    maxBodyBytes: Type.Integer({ minimum: 1024, maximum: 1_048_576 }),
    maxTokens: Type.Integer({ minimum: 1, maximum: 1_000 }),
  },
  { additionalProperties: false },
);
const DEFAULTS = { maxBodyBytes: 65_536, maxTokens: 100 };
const resolve = (partial: object | undefined) =>
  resolveNamedLimits(Schema, DEFAULTS, partial, SampleOptionError);

describe("resolveNamedLimits", () => {
  it("takes the defaults, with the given values over them", () => {
    expect(resolve(undefined)).toEqual(DEFAULTS);
    expect(resolve({ maxTokens: 3 })).toEqual({ maxBodyBytes: 65_536, maxTokens: 3 });
  });

  it("refuses a value out of range, naming it with the value got", () => {
    expect(() => resolve({ maxBodyBytes: 100 })).toThrow(SampleOptionError);
    expect(() => resolve({ maxBodyBytes: 100 })).toThrow(/^limits\.maxBodyBytes: .* \(got 100\)$/);
    expect(() => resolve({ maxTokens: 1.5 })).toThrow(/^limits\.maxTokens: /);
  });

  it("refuses a name that is not a limit", () => {
    expect(() => resolve({ maxToken: 3 })).toThrow(/^limits\.maxToken: .* \(got 3\)$/);
  });
});
