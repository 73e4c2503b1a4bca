// Kafka's record batch (magic v2) and the body of a Produce request (v9 to v12, the flexible
// versions), written straight into one buffer per partition: the bytes @platformatic/kafka's own
// request builder writes (record-batch.test.ts compares them), without its few buffers per field
// and copies per level, which cost the deduction consumer's ledger relay more CPU than the rest
// of the relay. And murmur2 in 32-bit integer arithmetic (the library's uses BigInt), for the
// partitioner the Java client and kafkajs use. Pure: no I/O.
// Hand-written protocol code, kept for its measured reason: the consumer benchmark went from
// 42-45 to 30-33 ms CPU per 1,000 events with it (both pieces together; the figures and what is
// not measured yet are beside createProduceRequest in kafka.ts and in the package README).

/** A record of a batch: key and value bytes, the timestamp in epoch ms (as the library holds it). */
export interface BatchRecord {
  key?: Buffer | null;
  value: Buffer | null;
  timestamp?: bigint;
}

export interface BatchHeader {
  producerId: bigint;
  producerEpoch: number;
  /** Sequence number of the batch's first record (idempotent producer); 0 otherwise. */
  firstSequence: number;
  /** Timestamp of records that carry none. */
  nowMs: bigint;
}

/** Zigzag: small negative and positive 32-bit integers both get short varints. */
const zigzag = (value: number) => ((value << 1) ^ (value >> 31)) >>> 0;

/** Bytes of a zigzag varint. */
const varIntSize = (value: number) => unsignedVarIntSize(zigzag(value));

const writeVarInt = (buf: Buffer, at: number, value: number) =>
  writeUnsignedVarInt(buf, at, zigzag(value));

/** A zigzag varlong of a delta that fits a double exactly (timestamps deltas do). */
function varLongSize(value: number): number {
  let v = value < 0 ? -2 * value - 1 : 2 * value;
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function writeVarLong(buf: Buffer, at: number, value: number): number {
  let v = value < 0 ? -2 * value - 1 : 2 * value;
  while (v >= 0x80) {
    buf[at++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  buf[at++] = v;
  return at;
}

function writeUnsignedVarInt(buf: Buffer, at: number, value: number): number {
  let v = value >>> 0;
  while (v >= 0x80) {
    buf[at++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[at++] = v;
  return at;
}

function unsignedVarIntSize(value: number): number {
  let v = value >>> 0;
  let n = 1;
  while (v >= 0x80) {
    v >>>= 7;
    n++;
  }
  return n;
}

/** Bytes of the batch header (base offset to record count). */
const BATCH_HEADER_BYTES = 61;
/** Where the CRC-covered part starts (attributes). */
const CRC_FROM = 21;

/**
 * One record batch of `records` (at least one): base offset 0, partition leader epoch 0, no
 * compression, not transactional, records without headers. `crc32c` is Castagnoli's CRC of the
 * bytes from the attributes to the end.
 */
export function encodeRecordBatch(
  records: readonly BatchRecord[],
  header: BatchHeader,
  crc32c: (bytes: Buffer) => number,
): Buffer {
  const first = records[0]?.timestamp ?? header.nowMs;
  let maxTimestamp = first;
  const deltas = new Array<number>(records.length);
  const bodies = new Array<number>(records.length);
  let size = BATCH_HEADER_BYTES;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    const ts = r.timestamp ?? header.nowMs;
    if (ts > maxTimestamp) maxTimestamp = ts;
    const delta = Number(ts - first);
    deltas[i] = delta;
    const keyLength = r.key == null ? -1 : r.key.length;
    const valueLength = r.value === null ? -1 : r.value.length;
    const body =
      1 + // attributes
      varLongSize(delta) +
      varIntSize(i) +
      varIntSize(keyLength) +
      Math.max(0, keyLength) +
      varIntSize(valueLength) +
      Math.max(0, valueLength) +
      1; // no headers
    bodies[i] = body;
    size += varIntSize(body) + body;
  }
  const buf = Buffer.allocUnsafe(size);
  buf.writeBigInt64BE(0n, 0); // base offset
  buf.writeInt32BE(size - 12, 8); // batch length: what follows it
  buf.writeInt32BE(0, 12); // partition leader epoch
  buf.writeInt8(2, 16); // magic
  buf.writeInt16BE(0, CRC_FROM); // attributes
  buf.writeInt32BE(records.length - 1, 23); // last offset delta
  buf.writeBigInt64BE(first, 27);
  buf.writeBigInt64BE(maxTimestamp, 35);
  buf.writeBigInt64BE(header.producerId, 43);
  buf.writeInt16BE(header.producerEpoch, 51);
  buf.writeInt32BE(header.firstSequence, 53);
  buf.writeInt32BE(records.length, 57);
  let at = BATCH_HEADER_BYTES;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    at = writeVarInt(buf, at, bodies[i]!);
    buf[at++] = 0;
    at = writeVarLong(buf, at, deltas[i]!);
    at = writeVarInt(buf, at, i);
    if (r.key == null) at = writeVarInt(buf, at, -1);
    else {
      at = writeVarInt(buf, at, r.key.length);
      at += r.key.copy(buf, at);
    }
    if (r.value === null) at = writeVarInt(buf, at, -1);
    else {
      at = writeVarInt(buf, at, r.value.length);
      at += r.value.copy(buf, at);
    }
    buf[at++] = 0; // header count 0
  }
  buf.writeUInt32BE(crc32c(buf.subarray(CRC_FROM)), 17);
  return buf;
}

/** The body of a Produce request v9-v12: one topic, its partitions' batches; no transaction. */
export function encodeProduceBody(
  acks: number,
  timeoutMs: number,
  topic: string,
  batches: readonly { partition: number; batch: Buffer }[],
): Buffer {
  const name = Buffer.from(topic, "utf8");
  let size = 1 + 2 + 4 + unsignedVarIntSize(2) + unsignedVarIntSize(name.length + 1);
  size += name.length + unsignedVarIntSize(batches.length + 1) + 1 + 1;
  for (const b of batches) {
    size += 4 + unsignedVarIntSize(b.batch.length + 1) + b.batch.length + 1;
  }
  const buf = Buffer.allocUnsafe(size);
  let at = 0;
  buf[at++] = 0; // transactional id: null compact string
  at = buf.writeInt16BE(acks, at);
  at = buf.writeInt32BE(timeoutMs, at);
  at = writeUnsignedVarInt(buf, at, 2); // one topic
  at = writeUnsignedVarInt(buf, at, name.length + 1);
  at += name.copy(buf, at);
  at = writeUnsignedVarInt(buf, at, batches.length + 1);
  for (const b of batches) {
    at = buf.writeInt32BE(b.partition, at);
    at = writeUnsignedVarInt(buf, at, b.batch.length + 1);
    at += b.batch.copy(buf, at);
    buf[at++] = 0; // partition tagged fields
  }
  buf[at++] = 0; // topic tagged fields
  buf[at++] = 0; // request tagged fields
  return buf;
}

/** Kafka's murmur2 of the bytes (the Java client's Utils.murmur2), as a signed 32-bit integer. */
export function murmur2(data: Buffer): number {
  const length = data.length;
  const m = 0x5bd1e995;
  let h = (0x9747b28c ^ length) | 0;
  const end = length - (length % 4);
  for (let i = 0; i < end; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  // The tail bytes, highest first, as the Java client's fall-through switch mixes them.
  const tail = length % 4;
  if (tail === 3) h ^= data[end + 2]! << 16;
  if (tail >= 2) h ^= data[end + 1]! << 8;
  if (tail >= 1) {
    h ^= data[end]!;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}
