// The one error base of creditflow: every package's error class extends CreditflowError and
// declares its closed list of codes with errorCodes(), so the list is data its README is checked
// against. Exceptions are for bugs and infrastructure failures; expected outcomes are results.

/** What one code promises to whoever catches it. */
export interface ErrorCodeSpec {
  /** The same call may succeed if tried again (an infrastructure failure); never for bad input or a bug. */
  readonly retryable: boolean;
  /** What the code means, one line; the package README's errors table says the same. */
  readonly doc: string;
}

/** A package's closed list of error codes; an entry may say more (an HTTP `status`). */
export type ErrorCodeList = Readonly<Record<string, ErrorCodeSpec>>;

/** Declares a package's closed list of codes: checks each entry, keeps the codes as literal types. */
export function errorCodes<const T extends ErrorCodeList>(codes: T): T {
  return codes;
}

/**
 * The base of every creditflow error: a `code` of its package's closed list, the `field` at fault
 * where one is (`limits.maxRecords`, `events.3.inputTokens`), whether a retry may help (from the
 * list, so one code always answers the same) and the `cause` kept. `name` is the class's name.
 */
export abstract class CreditflowError<Code extends string = string> extends Error {
  readonly code: Code;
  readonly field: string | undefined;
  readonly retryable: boolean;

  protected constructor(
    codes: Readonly<Record<Code, ErrorCodeSpec>>,
    code: Code,
    message: string,
    opts: { field?: string | undefined; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.field = opts.field;
    this.retryable = codes[code].retryable;
  }
}
