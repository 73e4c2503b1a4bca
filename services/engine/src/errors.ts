// The engine's one error class for bugs and bad configuration; expected outcomes are result codes.
import { CreditflowError, errorCodes } from "./creditflow-error.ts";

/** Engine errors are never retryable: the same input fails the same way. */
export const ENGINE_ERROR_CODES = errorCodes({
  assertion_failed: { retryable: false, doc: "a bug: an assertion failed (assertions stay on)" },
  config_invalid: {
    retryable: false,
    doc: "the rate card or plans failed validation; `issues` names each file and value",
  },
  state_invalid: { retryable: false, doc: "a stored state that does not decode" },
});
export type EngineErrorCode = keyof typeof ENGINE_ERROR_CODES;

/** One problem found in a configuration file. */
export interface ConfigIssue {
  /** The file (or other source) the value came from. */
  source: string;
  /** JSON pointer to the offending value, `/tiers/1/monthlyAllowanceMicros`. */
  path: string;
  message: string;
}

export class EngineError extends CreditflowError<EngineErrorCode> {
  readonly issues: ConfigIssue[];

  constructor(code: EngineErrorCode, message: string, issues: ConfigIssue[] = [], cause?: unknown) {
    super(ENGINE_ERROR_CODES, code, message, { field: issues[0]?.path, cause });
    this.issues = issues;
  }
}

/** A programmer error: kept on in production. */
export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new EngineError("assertion_failed", message);
}

export function assertMicros(value: number, what: string): void {
  if (!Number.isSafeInteger(value)) {
    throw new EngineError("assertion_failed", `${what} must be a safe integer, got ${value}`);
  }
}
