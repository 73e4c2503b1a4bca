// The engine's one error class for bugs and bad configuration; expected outcomes are result codes.

export const ENGINE_ERROR_CODES = ["assertion_failed", "config_invalid", "state_invalid"] as const;
export type EngineErrorCode = (typeof ENGINE_ERROR_CODES)[number];

/** One problem found in a configuration file. */
export interface ConfigIssue {
  /** The file (or other source) the value came from. */
  source: string;
  /** JSON pointer to the offending value, `/tiers/1/monthlyAllowanceMicros`. */
  path: string;
  message: string;
}

export class EngineError extends Error {
  readonly code: EngineErrorCode;
  /** Engine errors are never retryable: the same input fails the same way. */
  readonly retryable = false;
  readonly issues: ConfigIssue[];

  constructor(code: EngineErrorCode, message: string, issues: ConfigIssue[] = [], cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "EngineError";
    this.code = code;
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
