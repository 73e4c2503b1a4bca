// Kafka's murmur2 in 32-bit integer arithmetic: the partitioner the Java client and kafkajs use
// (murmur2(key) & 0x7fffffff, modulo the partition count). @platformatic/kafka's own murmur2
// computes the same hash in BigInt arithmetic; murmur2.test.ts checks the two agree on any bytes.
// Pure: no I/O.

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
