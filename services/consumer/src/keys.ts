// Redis key names of the consumer, named once. Every key of one member carries the hash tag
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
  member(userId: string): MemberKeys;
  /** Sorted set: userId scored by its next deadline (epoch ms). */
  deadlines: string;
  /** Hash: userId -> the member version the deadline above was computed from. */
  deadlineVersions: string;
}

export function keySpace(prefix: string): KeySpace {
  return {
    member: (userId) => ({
      member: `${prefix}{${userId}}:m`,
    }),
    deadlines: `${prefix}{deadlines}`,
    deadlineVersions: `${prefix}{deadlines}:v`,
  };
}

/** The hash field holding the last applied offset of one source partition. */
export function offsetField(topic: string, partition: number): string {
  return `o:${topic}:${partition}`;
}
