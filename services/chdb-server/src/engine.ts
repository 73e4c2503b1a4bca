// The only module that touches chdb: opening Sessions on the data directory, running
// statements, streaming results and raw (binary-safe) inserts. Everything above it speaks HTTP.
import { randomUUID } from "node:crypto";
import { rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { drainPending, Session, type StreamChunk } from "chdb";

/** The native entry behind chdb's raw insert: `prefix` + newline + `data`, any input format. */
interface NativeInsert {
  InsertRawAsyncConnection(
    connection: unknown,
    prefix: string,
    data: Buffer,
    countLines: boolean,
  ): Promise<{ rowsWritten: number; bytesWritten: number; elapsed: number }>;
}

// chdb's public insert() whitelists text formats; RowBinary and friends need the same native
// call with the client's own INSERT … FORMAT line, which is exactly what the server would run.
const require = createRequire(import.meta.url);
const native = require(
  join(dirname(require.resolve("chdb")), "dist", "loader.js"),
).loadNative() as NativeInsert;

export interface EngineSummary {
  readRows: number;
  readBytes: number;
  writtenRows: number;
  writtenBytes: number;
  elapsedSeconds: number;
}

/**
 * Settings clickhouse-local starts with that differ from a server's (see system.settings
 * WHERE changed on a fresh chdb Session): every Session is put back to the server's value,
 * so SQL behaves as it does on a server (implicit_select=1 would run `invalid_query` as
 * `SELECT invalid_query`, code 47 instead of 62).
 */
export const localOnlySettings = [
  "implicit_select",
  "allow_introspection_functions",
  "storage_file_read_method",
  "output_format_arrow_use_native_writer",
] as const;

/**
 * The setting that marks every query of one Session, so a query whose client left can be
 * found in system.processes and killed from another Session. `log_comment` is the setting
 * ClickHouse has for a caller's tag; a client that sets its own for a query hides that query
 * from the killer (it then ends on its own, bounded by abandonedQueryHoldMs).
 */
export const SESSION_TAG_SETTING = "log_comment";

/** Closes of Sessions that were still in a native call, each resolved once it is done. */
const deferredCloses = new Set<Promise<void>>();

/** One chdb connection on the shared data directory; its calls run one after another. */
export class EngineSession {
  readonly #session: Session;
  /** `chdb-server <uuid>`: the value of SESSION_TAG_SETTING on this Session. */
  readonly tag = `chdb-server ${randomUUID()}`;
  #inEngine = 0;
  /** Set by a close() that came while a native call ran: the close, once the call returns. */
  #closeWhenIdle: (() => void) | undefined;
  #closed = false;
  constructor(dataDir: string) {
    this.#session = new Session(dataDir);
    this.#session.query(
      [
        ...localOnlySettings.map((name) => `SET ${name} = DEFAULT`),
        `SET ${SESSION_TAG_SETTING} = '${this.tag}'`,
      ].join(";\n"),
      "TabSeparated",
    );
  }

  /** True while a native call runs on this Session (a query, an insert, a stream's fetch). */
  get inEngine(): boolean {
    return this.#inEngine > 0;
  }

  /** The statement that puts `name` back to this Session's starting value after one request. */
  resetStatement(name: string): string {
    return name === SESSION_TAG_SETTING ? `SET ${name} = '${this.tag}'` : `SET ${name} = DEFAULT`;
  }

  async #tracked<T>(call: Promise<T>): Promise<T> {
    this.#inEngine++;
    try {
      return await call;
    } finally {
      this.#left();
    }
  }

  #left(): void {
    this.#inEngine--;
    if (this.#inEngine === 0) this.#closeWhenIdle?.();
  }

  /** Runs statements that return nothing (USE, SET); several at once, separated by `;`. */
  async run(statements: readonly string[]): Promise<void> {
    if (statements.length > 0)
      await this.#tracked(
        this.#session.queryAsync(statements.join(";\n"), { format: "TabSeparated" }),
      );
  }

  /** Runs one query to completion and returns its whole output. */
  async queryAll(
    sql: string,
    format: string,
  ): Promise<{ bytes: Uint8Array; summary: EngineSummary }> {
    const result = await this.#tracked(this.#session.queryAsync(sql, { format }));
    return {
      bytes: result.bytes(),
      summary: {
        readRows: result.rowsRead,
        readBytes: result.bytesRead,
        writtenRows: 0,
        writtenBytes: 0,
        elapsedSeconds: result.elapsed,
      },
    };
  }

  /**
   * Streams a SELECT-like query block by block; the engine refuses DDL and INSERT here
   * (code 36). `signal` stops it between blocks; a block in progress ends by a kill.
   */
  async *stream(sql: string, format: string, signal: AbortSignal): AsyncIterable<StreamChunk> {
    this.#inEngine++;
    try {
      yield* this.#session.queryStream(sql, { format, signal });
    } finally {
      this.#left();
    }
  }

  /**
   * `INSERT … FORMAT X` with its data, bytes untouched. chdb runs the statement and the data
   * as one text in which a blank line ("\n\n") ends the inline data (the rest would be parsed
   * as another statement: rows lost, or binary garbage run as SQL). Data holding a blank line
   * (any RowBinary with 0x0A0A, CSV with empty lines in quoted fields) is therefore spooled to
   * a file the same statement reads with FROM INFILE.
   */
  async insert(statement: string, data: Buffer, spoolDir: string): Promise<EngineSummary> {
    const fromFile = data.indexOf("\n\n") >= 0 ? withInfile(statement, spoolDir) : undefined;
    let raw: Awaited<ReturnType<NativeInsert["InsertRawAsyncConnection"]>>;
    if (fromFile) {
      await writeFile(fromFile.path, data);
      try {
        raw = await this.#tracked(
          native.InsertRawAsyncConnection(
            this.#session.connection,
            fromFile.statement,
            Buffer.alloc(0),
            false,
          ),
        );
      } finally {
        await rm(fromFile.path, { force: true });
      }
    } else {
      raw = await this.#tracked(
        native.InsertRawAsyncConnection(this.#session.connection, statement, data, false),
      );
    }
    return {
      readRows: raw.rowsWritten,
      readBytes: raw.bytesWritten,
      writtenRows: raw.rowsWritten,
      writtenBytes: raw.bytesWritten,
      elapsedSeconds: raw.elapsed,
    };
  }

  /**
   * Closes the Session, or, while a native call runs on it (a retired Session's write, which
   * the front lets finish), as soon as that call returns: chdb defers its own close behind the
   * queries it tracks, not behind the raw insert, whose connection must outlive it.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#inEngine === 0) {
      this.#session.close();
      return;
    }
    const closed = new Promise<void>((resolve) => {
      this.#closeWhenIdle = () => {
        this.#closeWhenIdle = undefined;
        this.#session.close();
        resolve();
      };
    });
    deferredCloses.add(closed);
    void closed.then(() => deferredCloses.delete(closed));
  }
}

/**
 * Kills the query a Session runs, from a Session of its own (chdb has no interrupt call; the
 * engine's KILL QUERY sets the query's cancel flag, which it checks between blocks and in
 * long functions). Runs synchronously on the event loop: the libuv threads may all be held
 * by the very queries it is meant to stop. KILL … ASYNC returns at once (a few ms).
 */
export class EngineKiller {
  readonly #session: Session;
  constructor(dataDir: string) {
    this.#session = new Session(dataDir);
  }

  /** Asks the engine to cancel whatever `target` runs now; false when the engine refused. */
  kill(target: EngineSession): boolean {
    try {
      this.#session.query(
        `KILL QUERY WHERE Settings['${SESSION_TAG_SETTING}'] = '${target.tag}' ASYNC`,
        "Null",
      );
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    this.#session.close();
  }
}

const trailingFormat = /\bFORMAT\s+[A-Za-z0-9_]+\s*;?\s*$/i;

/**
 * The client's statement reading its data from a spool file: `FROM INFILE '<file>'` goes
 * right before the trailing `FORMAT X` (where ClickHouse's grammar puts it). Undefined when
 * the statement has no trailing FORMAT or carries SETTINGS (INFILE must precede them): then
 * the data stays inline.
 */
export function withInfile(
  statement: string,
  spoolDir: string,
): { statement: string; path: string } | undefined {
  const format = trailingFormat.exec(statement);
  if (!format || /\bSETTINGS\b/i.test(statement)) return undefined;
  const path = join(spoolDir, `insert-${randomUUID()}.data`);
  const literal = `'${path.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
  return {
    statement: `${statement.slice(0, format.index)}FROM INFILE ${literal} ${statement.slice(format.index)}`,
    path,
  };
}

/** True when the engine refused to stream a statement (DDL, INSERT …): run it whole instead. */
export function isStreamingUnsupported(error: unknown): boolean {
  return error instanceof Error && error.message.includes("Streaming query is not supported");
}

/** Waits until no native call is outstanding and every Session is closed (after close()). */
export async function drainEngine(): Promise<void> {
  while (deferredCloses.size > 0) await Promise.all([...deferredCloses]);
  await drainPending();
}
