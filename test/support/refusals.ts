// What a refusal looks like to the tests: the `{ error: { code, field, message } }` body of every
// 4xx of the API and the ingest, and the ClickHouse error a call must reject with (at once, or in
// the middle of a stream).
import { ClickHouseError } from "@clickhouse/client";
import { expect } from "vitest";

/** Expects the answer to be `status` with the refusal body naming `code` and `field`, nothing more. */
export function expectRefusal(
  r: { status: number; body: unknown },
  status: number,
  code: string,
  field: string,
): void {
  expect({ status: r.status, body: r.body }).toEqual({
    status,
    body: { error: { code, field, message: expect.any(String) } },
  });
}

/**
 * The ClickHouseError `work` rejects with; fails the test when it resolves or throws anything
 * else.
 */
export async function clickhouseError(work: () => Promise<unknown>): Promise<ClickHouseError> {
  try {
    await work();
  } catch (error) {
    if (error instanceof ClickHouseError) return error;
    throw error;
  }
  throw new Error("expected a ClickHouseError, the call succeeded");
}

/**
 * Reads a query's row stream to its end; answers the ClickHouseError it broke off with and the
 * rows read before it (see clickhouseError).
 */
export async function streamError(result: {
  stream(): AsyncIterable<unknown[]>;
}): Promise<{ error: ClickHouseError; rows: number }> {
  let rows = 0;
  const error = await clickhouseError(async () => {
    for await (const batch of result.stream()) rows += batch.length;
  });
  return { error, rows };
}
