// Errors of the front itself (one class, a closed list of codes) and the translation of
// engine errors into what ClickHouse's HTTP interface sends: code, message, HTTP status.
import { CreditflowError, errorCodes } from "@creditflow/engine";

/** Start-up failures; a request's failure is a ClickHouseFailure, answered, never thrown out. */
export const CHDB_SERVER_ERROR_CODES = errorCodes({
  invalid_option: {
    retryable: false,
    doc: "an option failed validation at start-up; `field` names it",
  },
  engine_unavailable: {
    retryable: false,
    doc: "the engine could not open the data directory (cause kept)",
  },
});

export class ChdbServerError extends CreditflowError.withCodes(CHDB_SERVER_ERROR_CODES) {}

/** An error as ClickHouse reports it over HTTP: the numeric code and its `Code: N. DB::Exception: …` text. */
export interface ClickHouseFailure {
  code: number;
  message: string;
}

/** ClickHouse error codes the front raises itself (protocol-level failures, same numbers as the server). */
export const FrontErrorCode = {
  BAD_ARGUMENTS: 36,
  UNKNOWN_SETTING: 115,
  TOO_MANY_SIMULTANEOUS_QUERIES: 202,
  SESSION_NOT_FOUND: 372,
  SESSION_IS_LOCKED: 373,
  CANNOT_DECOMPRESS: 271,
  HTTP_LENGTH_REQUIRED: 381,
  TIMEOUT_EXCEEDED: 159,
  QUERY_WAS_CANCELLED: 394,
  UNKNOWN_EXCEPTION: 1002,
} as const;

const codeNames: Record<number, string> = Object.fromEntries(
  Object.entries(FrontErrorCode).map(([name, code]) => [code, name]),
);

/** A failure raised by the front, worded like the server's own. */
export function frontFailure(code: number, text: string, version: string): ClickHouseFailure {
  return {
    code,
    message: `Code: ${code}. DB::Exception: ${text}. (${codeNames[code] ?? "UNKNOWN_EXCEPTION"}) (version ${version})`,
  };
}

const codeInText = /Code: (\d+)\./;

/** The engine's error as the server would send it; the code comes from chdb's field or the text. */
export function engineFailure(error: unknown, version: string): ClickHouseFailure {
  const text = error instanceof Error ? error.message : String(error);
  const fromField = (error as { clickhouseCode?: unknown } | null)?.clickhouseCode;
  const fromText = codeInText.exec(text)?.[1];
  const code =
    typeof fromField === "number"
      ? fromField
      : fromText
        ? Number(fromText)
        : FrontErrorCode.UNKNOWN_EXCEPTION;
  const message = codeInText.test(text)
    ? text
    : `Code: ${code}. DB::Exception: ${text}. (UNKNOWN_EXCEPTION)`;
  return {
    code,
    message: /\(version [^)]*\)\s*$/.test(message) ? message : `${message} (version ${version})`,
  };
}

// ClickHouse's exceptionCodeToHTTPStatus (src/Server/HTTPHandler.cpp), the codes a client meets.
const badRequest = new Set([
  6, 25, 26, 27, 32, 33, 34, 35, 36, 38, 41, 42, 43, 44, 46, 47, 48, 49, 53, 62, 69, 70, 72, 73, 80,
  113, 114, 115, 130, 131, 190, 226, 271, 381, 456, 457,
]);
const notFound = new Set([60, 81, 75, 128, 372]);

export function httpStatusFor(code: number): number {
  if (code === 516 || code === 192 || code === 193 || code === 194) return 401;
  if (code === 497 || code === 164) return 403;
  if (badRequest.has(code)) return 400;
  if (notFound.has(code)) return 404;
  if (code === 381) return 411;
  if (code === 159) return 504;
  if (code === 202 || code === 373) return 503;
  if (code === 394) return 499;
  return 500;
}
