// Reads a member's engine state from the consumer's Redis hash (`${prefix}{userId}:m`, field `s`
// the encoded state, `v` its version). Read only: the consumer is the only writer of balances.
import { type KeySpace, keySpace } from "@creditflow/consumer";
import { decodeState, type MemberState } from "@creditflow/engine";
import type { Redis } from "ioredis";
import { ApiError } from "./errors.ts";

export interface StoredMember {
  state: MemberState;
  /** The consumer's version of the hash (increments with each write). */
  version: number;
}

export class MemberReader {
  private readonly redis: Redis;
  /** The consumer's key names, so this reader and the writer never disagree. */
  private readonly keys: KeySpace;

  constructor(redis: Redis, prefix: string) {
    this.redis = redis;
    this.keys = keySpace(prefix);
  }

  /** The member's state, or null when the consumer holds none for this user. */
  async load(userId: string): Promise<StoredMember | null> {
    let fields: (string | null)[];
    try {
      fields = await this.redis.hmget(this.keys.member(userId).member, "s", "v");
    } catch (cause) {
      throw new ApiError("redis_unavailable", "", "the balance store did not answer; retry", {
        cause,
        headers: { "retry-after": "1" },
      });
    }
    const [text, version] = fields;
    if (text === null || text === undefined) return null;
    // A state that does not decode is a bug (or a newer codec): let it surface as a 500.
    return { state: decodeState(text), version: Number(version ?? 0) };
  }

  /** The member's state, or 404 naming the user when there is none. */
  async require(userId: string): Promise<StoredMember> {
    const found = await this.load(userId);
    if (found === null) {
      throw new ApiError(
        "member_not_found",
        "userId",
        `no credit state for user ${userId}: the member has not used or been granted credits yet`,
      );
    }
    return found;
  }
}
