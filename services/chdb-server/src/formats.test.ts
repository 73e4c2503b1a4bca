// Goal: the front picks the output format the server would use (the SQL's FORMAT clause over
// default_format) and knows which formats stream, which repeat a header per block (cut right),
// and which are one document.
import { describe, expect, it } from "vitest";
import { outputFormatOf, outputShape } from "./formats.ts";

describe("outputFormatOf", () => {
  it("takes the FORMAT clause over the default", () => {
    expect(outputFormatOf("SELECT 1", "TabSeparated")).toBe("TabSeparated");
    expect(outputFormatOf("SELECT number FROM numbers(3) FORMAT JSON", "TSV")).toBe("JSON");
    expect(outputFormatOf("select 1 format CSVWithNames;\n", "TSV")).toBe("CSVWithNames");
  });

  it("reads FORMAT only where the clause stands", () => {
    expect(outputFormatOf("SELECT x AS format FROM t", "TSV")).toBe("TSV");
    expect(outputFormatOf("SELECT 'FORMAT JSON' AS s FORMAT TSV", "CSV")).toBe("TSV");
    expect(outputFormatOf("SELECT 1 FORMAT JSON SETTINGS max_threads = 1", "TSV")).toBe("JSON");
  });

  it("prefers a document format when the text names several", () => {
    expect(outputFormatOf("SELECT 'a FORMAT JSON;' AS s FORMAT TSV", "TSV")).toBe("JSON");
  });
});

describe("outputShape", () => {
  it("streams row formats and runs documents whole, whatever the case", () => {
    expect(outputShape("JSONEachRow").kind).toBe("rows");
    expect(outputShape("rowbinary").kind).toBe("rows");
    for (const document of ["JSON", "JSONCompact", "XML", "PrettyCompact", "Parquet", "Values"])
      expect(outputShape(document).kind).toBe("document");
  });

  it("cuts one or two header lines from text formats with names", () => {
    const names = outputShape("CSVWithNames");
    const types = outputShape("JSONCompactEachRowWithNamesAndTypes");
    if (names.kind !== "headed-rows" || types.kind !== "headed-rows") throw new Error("not headed");
    expect(Buffer.from(names.laterBlock(Buffer.from('"n"\n1\n2\n'))).toString()).toBe("1\n2\n");
    expect(Buffer.from(types.laterBlock(Buffer.from('["n"]\n["UInt64"]\n[1]\n'))).toString()).toBe(
      "[1]\n",
    );
  });

  it("cuts the RowBinary header of names and types", () => {
    const shape = outputShape("RowBinaryWithNamesAndTypes");
    if (shape.kind !== "headed-rows") throw new Error("not headed");
    const header = Buffer.from([
      2,
      1,
      0x61,
      1,
      0x62,
      5,
      ...Buffer.from("UInt8"),
      6,
      ...Buffer.from("String"),
    ]);
    const rows = Buffer.from([7, 1, 0x78]);
    expect(Buffer.from(shape.laterBlock(Buffer.concat([header, rows])))).toEqual(rows);
  });

  it("drops the meta row the engine repeats per block of JSONEachRowWithProgress", () => {
    const shape = outputShape("JSONEachRowWithProgress");
    if (shape.kind !== "headed-rows") throw new Error("not headed");
    const block = '{"totals":{"k":0}}\n{"meta":[{"name":"k","type":"UInt8"}]}\n{"row":{"k":1}}\n';
    expect(Buffer.from(shape.laterBlock(Buffer.from(block))).toString()).toBe(
      '{"totals":{"k":0}}\n{"row":{"k":1}}\n',
    );
  });
});
