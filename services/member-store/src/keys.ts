// Redis key names of the member store, named once. Every key of one member carries the hash tag
// `{userId}` so a member's atomic write touches one Redis Cluster slot; the deadline index shares
// the tag `{deadlines}` so its script touches one slot too.

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
  /** Sorted set: userId scored by its next deadline (epoch ms). */
  deadlines: string;
  /** Hash: userId -> the member version the deadline above was computed from. */
  deadlineVersions: string;
}

export function keySpace(prefix: string): KeySpace {
  return {
    prefix,
    member: (userId) => ({
      member: `${prefix}{${userId}}:m`,
    }),
    memberPattern: `${globEscaped(prefix)}{*}:m`,
    userIdOf: (memberKey) => memberKey.slice(prefix.length + 1, -3),
    deadlines: `${prefix}{deadlines}`,
    deadlineVersions: `${prefix}{deadlines}:v`,
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
