// A service's named limits: its defaults with the caller's values over them, checked once at
// start-up against the TypeBox schema that documents each limit's range.
import type { Static, TObject } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import type { OptionErrorClass } from "./tokens.ts";

/**
 * The limits: `defaults` with `partial` over them. The first value out of its range (or not
 * in the schema) throws the service's `Refusal` naming it: `limits.maxBodyBytes: Expected
 * integer to be greater or equal to 1024 (got 100)`.
 */
export function resolveNamedLimits<S extends TObject>(
  schema: S,
  defaults: Static<S>,
  partial: Partial<Static<S>> | undefined,
  Refusal: OptionErrorClass,
): Static<S> {
  const limits: Static<S> = { ...defaults, ...partial };
  const first = Value.Errors(schema, limits).First();
  if (first) {
    const field = `limits.${first.path.replace(/^\//, "").replaceAll("/", ".")}`;
    throw new Refusal(field, `${first.message} (got ${JSON.stringify(first.value)})`);
  }
  return limits;
}
