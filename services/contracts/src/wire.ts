// The Confluent wire format: magic byte 0, the schema id as a big-endian int32, then the
// Avro binary body. Pure framing; the registry lookup and Avro decoding live elsewhere.

export const MAGIC_BYTE = 0;
export const WIRE_HEADER_BYTES = 5;

export type WireFrame =
  | { ok: true; schemaId: number; body: Buffer }
  | {
      ok: false;
      reason: "empty" | "too_short" | "bad_magic_byte" | "bad_schema_id";
      detail: string;
    };

/** frameWire(schemaId, body): the bytes a Confluent-compatible consumer expects. */
export function frameWire(schemaId: number, body: Buffer): Buffer {
  if (!Number.isInteger(schemaId) || schemaId < 0 || schemaId > 0x7fffffff) {
    throw new RangeError(`schemaId must be an int32 >= 0, got ${schemaId}`);
  }
  const header = Buffer.allocUnsafe(WIRE_HEADER_BYTES);
  header.writeUInt8(MAGIC_BYTE, 0);
  header.writeInt32BE(schemaId, 1);
  return Buffer.concat([header, body]);
}

/** unframeWire(bytes): the schema id and Avro body, or why the bytes are not a frame. */
export function unframeWire(bytes: Buffer | null | undefined): WireFrame {
  if (!bytes || bytes.length === 0) return { ok: false, reason: "empty", detail: "no value" };
  if (bytes[0] !== MAGIC_BYTE) {
    return { ok: false, reason: "bad_magic_byte", detail: `first byte is ${bytes[0]}, expected 0` };
  }
  if (bytes.length < WIRE_HEADER_BYTES) {
    return { ok: false, reason: "too_short", detail: `${bytes.length} bytes, header needs 5` };
  }
  const schemaId = bytes.readInt32BE(1);
  if (schemaId <= 0) {
    return { ok: false, reason: "bad_schema_id", detail: `schema id ${schemaId}` };
  }
  return { ok: true, schemaId, body: bytes.subarray(WIRE_HEADER_BYTES) };
}
