// The process's memory of the members it wrote last: the encoded state, version and partition
// offsets exactly as this process last stored or loaded them (the encoded text, a kilobyte or
// two, rather than the decoded object graph, many times that: the heap stays small for GC). A
// unit starts from here instead of loading the member from Redis; the CAS on the version makes
// that safe (a member someone else wrote since has a newer version, the write is refused, and the
// member is reloaded from Redis). What the cache cannot know is an outbox entry: a member is put
// here only once its unit's entries are relayed and released (fillCache), and the consumer
// clears the whole cache whenever a unit fails, since that may leave entries unrelayed (see
// unit-of-work.ts).

export interface CachedMember {
  version: number;
  /** The state as stored in the hash's `s` field (encodeState). */
  stateText: string;
  /** Last applied offset per source partition (keyed by offsetField), as stored at `version`. */
  offsets: Map<string, bigint>;
  /** The deadline this process last put in the index for this member (undefined: unknown). */
  indexedDeadlineMs?: number | null;
}

/** A bounded map, least recently used first out; capacity 0 keeps nothing. */
export class MemberCache {
  private readonly members = new Map<string, CachedMember>();
  private readonly capacity: number;
  /** Moves at every clear(): a unit that started before a clear cannot fill the cache after it. */
  private gen = 0;
  hits = 0;
  misses = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.members.size;
  }

  get(userId: string): CachedMember | undefined {
    const m = this.members.get(userId);
    if (m === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // Most recently used goes to the end of the insertion order.
    this.members.delete(userId);
    this.members.set(userId, m);
    return m;
  }

  /** The current generation; pass it back to set() from work that started now. */
  get generation(): number {
    return this.gen;
  }

  /**
   * Keeps the member unless the cache already holds a newer version of it, or the cache was
   * cleared since `generation` (the caller's work started before a failure elsewhere in the
   * process, and may have loaded from the cache what that failure made unsafe to trust).
   */
  set(userId: string, member: CachedMember, generation = this.gen): void {
    if (this.capacity === 0 || generation !== this.gen) return;
    const held = this.members.get(userId);
    if (held !== undefined) {
      if (held.version > member.version) return;
      this.members.delete(userId);
    }
    this.members.set(userId, member);
    if (this.members.size > this.capacity) {
      const oldest = this.members.keys().next();
      if (!oldest.done) this.members.delete(oldest.value);
    }
  }

  /** The deadline now indexed for the member at `version`, when this process put it there. */
  indexed(userId: string, version: number): number | null | undefined {
    const m = this.members.get(userId);
    return m !== undefined && m.version === version ? m.indexedDeadlineMs : undefined;
  }

  markIndexed(userId: string, version: number, deadlineMs: number | null): void {
    const m = this.members.get(userId);
    if (m !== undefined && m.version === version) m.indexedDeadlineMs = deadlineMs;
  }

  delete(userId: string): void {
    this.members.delete(userId);
  }

  clear(): void {
    this.gen++;
    this.members.clear();
  }
}
