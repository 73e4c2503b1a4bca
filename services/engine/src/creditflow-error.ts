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

  /**
   * The base of a package's error class that says no more than code, message, field and cause:
   * `class ConsumerError extends CreditflowError.withCodes(CONSUMER_ERROR_CODES) {}`, thrown as
   * `new ConsumerError("kafka_failed", "commit 12", { cause })`.
   */
  static withCodes<Code extends string>(codes: Readonly<Record<Code, ErrorCodeSpec>>) {
    return class extends CreditflowError<Code> {
      constructor(
        code: Code,
        message: string,
        opts: { field?: string | undefined; cause?: unknown } = {},
      ) {
        super(codes, code, message, opts);
      }
    };
  }
}

/** The one code of an HTTP service's start-up failures (its other codes are HTTP answers). */
export const OPTION_ERROR_CODES = errorCodes({
  invalid_options: {
    retryable: false,
    doc: "an option (or its environment variable) is out of its range; `field` names it",
  },
});

/**
 * An HTTP service's start-up failure, never an HTTP answer: an option (or its environment
 * variable) out of its range, `field` naming it, the message `field: why`. Each service names its
 * own: `class ApiOptionError extends OptionError {}`.
 */
export abstract class OptionError extends CreditflowError<keyof typeof OPTION_ERROR_CODES> {
  declare readonly field: string;

  constructor(field: string, message: string) {
    super(OPTION_ERROR_CODES, "invalid_options", `${field}: ${message}`, { field });
  }
}
