// Redis key names of the member store, named once. Every key of one member carries the hash tag
// `{userId}` so a member's atomic write touches one Redis Cluster slot. The deadline index is
// sharded by the partition of the input topics that holds the member's records (no key holds
// every member): shard p is the tag `{deadlines:p}`, so its script touches one slot too.

export interface MemberKeys {
  /**
   * Hash: `s` encoded engine state, `v` version, `o:<topic>:<partition>` last applied offset,
   * `x:<version>` the outbox: the ledger entries written with the state at that version, not
   * yet relayed (packed: store.ts packOutbox).
   */
  member: string;
}

export interface KeySpace {
  /** What every key of this key space starts with (`CF_KEY_PREFIX`). */
  prefix: string;
  member(userId: string): MemberKeys;
  /** SCAN's pattern matching every member hash of the key space. */
  memberPattern: string;
  /** The member of a key that memberPattern matched. */
  userIdOf(memberKey: string): string;
  /** Sorted set of shard `shard`: userId scored by its next deadline (epoch ms). */
  deadlines(shard: number): string;
  /** Hash of shard `shard`: userId -> the member version its deadline was computed from. */
  deadlineVersions(shard: number): string;
  /**
   * The one deadline index of earlier versions (sorted set, and its `:v` hash): read only to move
   * its members into their shards (MemberStore.moveUnshardedDeadlines).
   */
  unshardedDeadlines: { deadlines: string; versions: string };
  /** SCAN's pattern matching every deadline shard's keys (sorted sets and version hashes). */
  deadlinePattern: string;
  /** The shard of a key deadlinePattern matched and whether it is the sorted set; null if none. */
  deadlineShardOf(key: string): { shard: number; sortedSet: boolean } | null;
}

export function keySpace(prefix: string): KeySpace {
  return {
    prefix,
    member: (userId) => ({
      member: `${prefix}{${userId}}:m`,
    }),
    memberPattern: `${globEscaped(prefix)}{*}:m`,
    userIdOf: (memberKey) => memberKey.slice(prefix.length + 1, -3),
    deadlines: (shard) => `${prefix}{deadlines:${shard}}`,
    deadlineVersions: (shard) => `${prefix}{deadlines:${shard}}:v`,
    unshardedDeadlines: { deadlines: `${prefix}{deadlines}`, versions: `${prefix}{deadlines}:v` },
    deadlinePattern: `${globEscaped(prefix)}{deadlines:*}*`,
    deadlineShardOf: (key) => {
      const m = /^\{deadlines:(\d+)\}(:v)?$/.exec(key.slice(prefix.length));
      return m === null ? null : { shard: Number(m[1]), sortedSet: m[2] === undefined };
    },
  };
}

/** The hash field holding the last applied offset of one source partition. */
export function offsetField(topic: string, partition: number): string {
  return `o:${topic}:${partition}`;
}

/** Text that SCAN's MATCH reads literally (its pattern characters escaped). */
export function globEscaped(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}
