// How an output format travels: the engine streams a result block by block and writes each
// block as a complete output of its own (a JSON document, a CSV header, an Arrow file per
// block). Formats whose blocks simply concatenate stream; formats that repeat a header per
// block stream with the header cut from every block after the first; every other format is
// one document (JSON, XML, Pretty, Parquet, ...) and is produced whole, by one engine call.
// Pure: no I/O, tested beside the code.

/** Formats whose per-block outputs concatenate into exactly the server's output. */
const concatenating = new Set([
  "tabseparated",
  "tsv",
  "tabseparatedraw",
  "tsvraw",
  "raw",
  "csv",
  "jsoneachrow",
  "jsonlines",
  "ndjson",
  "jsoncompacteachrow",
  "jsonstringseachrow",
  "jsoncompactstringseachrow",
  "rowbinary",
  "native",
  "null",
  "msgpack",
  "bsoneachrow",
  "lineasstring",
]);

/** Row formats that open every block with a header: how many header lines (text) or parts (binary). */
const headed: Record<string, { binary: boolean; parts: 1 | 2 }> = {};
for (const base of [
  "tabseparated",
  "tsv",
  "tabseparatedraw",
  "tsvraw",
  "csv",
  "jsoncompacteachrow",
  "jsoncompactstringseachrow",
]) {
  headed[`${base}withnames`] = { binary: false, parts: 1 };
  headed[`${base}withnamesandtypes`] = { binary: false, parts: 2 };
}
headed.rowbinarywithnames = { binary: true, parts: 1 };
headed.rowbinarywithnamesandtypes = { binary: true, parts: 2 };

/** Row formats with a `{"meta":…}` row, which the engine writes at the start of every block. */
const withProgress = new Set(["jsoneachrowwithprogress", "jsonstringseachrowwithprogress"]);

const metaRow = Buffer.from('{"meta":');

/** A block without its `{"meta":…}` lines (one per line, JSON-escaped: no raw newline inside). */
function withoutMetaRows(block: Uint8Array): Uint8Array {
  const text = Buffer.from(block.buffer, block.byteOffset, block.byteLength);
  if (text.indexOf(metaRow) < 0) return block;
  const kept: Buffer[] = [];
  let at = 0;
  while (at < text.length) {
    const end = text.indexOf(0x0a, at);
    const next = end < 0 ? text.length : end + 1;
    const line = text.subarray(at, next);
    if (!line.subarray(0, metaRow.length).equals(metaRow)) kept.push(line);
    at = next;
  }
  return Buffer.concat(kept);
}

export type OutputShape =
  /** blocks concatenate as they come */
  | { kind: "rows" }
  /** blocks after the first lose what the engine repeats per block (the header, the meta row) */
  | { kind: "headed-rows"; laterBlock: (block: Uint8Array) => Uint8Array }
  /** one document: run the query whole */
  | { kind: "document" };

export function outputShape(format: string): OutputShape {
  const name = format.toLowerCase();
  if (concatenating.has(name)) return { kind: "rows" };
  const header = headed[name];
  if (header) {
    return {
      kind: "headed-rows",
      laterBlock: header.binary
        ? (block) => block.subarray(rowBinaryHeaderLength(block, header.parts))
        : (block) => block.subarray(textHeaderLength(block, header.parts)),
    };
  }
  if (withProgress.has(name)) return { kind: "headed-rows", laterBlock: withoutMetaRows };
  return { kind: "document" };
}

/** `FORMAT <name>` where a FORMAT clause stands: at the end, or before `;` or SETTINGS. */
const formatClause = /\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*)\s*(?=;|\bSETTINGS\b|$)/gi;

/**
 * The output format of `sql`: the one its FORMAT clause names, else `defaultFormat`. When
 * the text holds several (a string ending in one, say) and any of them is a document format,
 * that one is taken, so a document is never mistaken for rows (running a row format whole
 * costs memory, not correctness).
 */
export function outputFormatOf(sql: string, defaultFormat: string): string {
  const named = [...sql.matchAll(formatClause)].map((match) => match[1] as string);
  if (named.length === 0) return defaultFormat;
  return named.find((name) => outputShape(name).kind === "document") ?? (named.at(-1) as string);
}

/** Bytes up to and including the `lines`-th newline (a text header of names, then types). */
function textHeaderLength(block: Uint8Array, lines: number): number {
  let at = -1;
  for (let i = 0; i < lines; i++) {
    at = block.indexOf(0x0a, at + 1);
    if (at < 0) return block.length;
  }
  return at + 1;
}

/** RowBinaryWithNames[AndTypes]: a LEB128 column count, then `parts` lists of LEB128-sized strings. */
function rowBinaryHeaderLength(block: Uint8Array, parts: number): number {
  let at = 0;
  const leb128 = (): number => {
    let value = 0;
    let shift = 0;
    for (;;) {
      const byte = block[at++];
      if (byte === undefined) return Number.NaN;
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
      shift += 7;
    }
  };
  const columns = leb128();
  for (let i = 0; i < columns * parts; i++) {
    const length = leb128(); // read first: it moves `at` past the length itself
    at += length;
  }
  return Number.isNaN(at) ? block.length : Math.min(at, block.length);
}
