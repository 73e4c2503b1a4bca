// Reads a member's engine state through the member store's read model (@creditflow/member-store,
// the one package that knows the Redis layout). Read only: the consumer is the only writer of
// balances.
import type { MemberState } from "@creditflow/engine";
import type { RedisClient } from "@creditflow/member-store";
import { keySpace, MemberStoreError, MemberReader as StoreReader } from "@creditflow/member-store";
import { ApiError } from "./errors.ts";

export interface StoredMember {
  state: MemberState;
  /** The consumer's version of the member (increments with each write). */
  version: number;
}

export class MemberReader {
  private readonly reader: StoreReader;

  constructor(redis: RedisClient, prefix: string) {
    this.reader = new StoreReader(redis, keySpace(prefix));
  }

  /** The member's state, or null when the consumer holds none for this user. */
  async load(userId: string): Promise<StoredMember | null> {
    try {
      return await this.reader.state(userId);
    } catch (cause) {
      // A state that does not decode (state_corrupt) is a bug, or a newer codec: it surfaces as
      // a 500. Redis not answering is the caller's to retry.
      if (!(cause instanceof MemberStoreError) || cause.code !== "redis_failed") throw cause;
      throw new ApiError("redis_unavailable", "", "the balance store did not answer; retry", {
        cause,
        headers: { "retry-after": "1" },
      });
    }
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
