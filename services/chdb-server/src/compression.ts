// HTTP body codings the ClickHouse HTTP interface speaks: request bodies sent with
// Content-Encoding, responses compressed when enable_http_compression=1 and the client accepts it.
import type { Transform } from "node:stream";
import zlib from "node:zlib";

const decoders: Record<string, () => Transform> = {
  gzip: () => zlib.createGunzip(),
  "x-gzip": () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
  br: () => zlib.createBrotliDecompress(),
  zstd: () => zlib.createZstdDecompress(),
};

const encoders: Record<string, () => Transform> = {
  gzip: () => zlib.createGzip({ level: 3 }),
  deflate: () => zlib.createDeflate({ level: 3 }),
  br: () => zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 3 } }),
  zstd: () => zlib.createZstdCompress(),
};

/** A decoder for the request's Content-Encoding; undefined for identity; null when unknown. */
export function requestDecoder(contentEncoding: string | undefined): Transform | undefined | null {
  const name = contentEncoding?.trim().toLowerCase();
  if (!name || name === "identity") return undefined;
  const make = decoders[name];
  return make ? make() : null;
}

/** The first coding the client accepts that we can produce, in the client's order. */
export function pickResponseEncoding(acceptEncoding: string | undefined): string | undefined {
  for (const part of (acceptEncoding ?? "").split(",")) {
    const name = part.split(";")[0]?.trim().toLowerCase();
    if (name && name in encoders) return name;
  }
  return undefined;
}

export function responseEncoder(name: string): Transform {
  const make = encoders[name];
  if (!make) throw new Error(`no encoder for ${name}`); // programmer error: pickResponseEncoding chose it
  return make();
}

const wholeEncoders: Record<string, (data: Buffer) => Buffer> = {
  gzip: (data) => zlib.gzipSync(data, { level: 3 }),
  deflate: (data) => zlib.deflateSync(data, { level: 3 }),
  br: (data) =>
    zlib.brotliCompressSync(data, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 3 } }),
  zstd: (data) => zlib.zstdCompressSync(data),
};

/** A small body (an error text) compressed in one call. */
export function encodeWhole(name: string, data: Buffer): Buffer {
  const encode = wholeEncoders[name];
  if (!encode) throw new Error(`no encoder for ${name}`); // programmer error: pickResponseEncoding chose it
  return encode(data);
}
