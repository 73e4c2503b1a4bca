// The memory of admin command ids, TigerBeetle style: the id, a digest of its body and the time it
// was first issued are saved (SET NX) before the command is sent, and reused on every retry, so a
// retry sends byte-for-byte the same command (the engine answers it as a duplicate) and a reused
// id with another body is refused with 409 before anything is sent. These keys are the API's own
// (`…:api:cmd:…`); the member's balance hash is never written here.
import { createHash } from "node:crypto";
import type { RedisClient } from "@creditflow/member-store";
import { ApiError } from "./errors.ts";

export interface Claimed {
  /** The command's time: this request's on first use, the first request's on a repeat. */
  atMs: number;
  repeat: boolean;
}

/** JSON with object keys sorted, so the same body in another key order has the same digest. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

export function bodyDigest(route: string, userId: string, body: unknown): string {
  return createHash("sha256")
    .update(`${route}\n${userId}\n${canonicalJson(body)}`)
    .digest("hex");
}

export class CommandIds {
  private readonly redis: RedisClient;
  private readonly prefix: string;
  private readonly ttlSeconds: number;

  constructor(redis: RedisClient, prefix: string, ttlSeconds: number) {
    this.redis = redis;
    this.prefix = prefix;
    this.ttlSeconds = ttlSeconds;
  }

  /** Same hash tag as the member: one Cluster slot per member. */
  key(userId: string, commandId: string): string {
    return `${this.prefix}{${userId}}:api:cmd:${commandId}`;
  }

  /** Saves the id with its digest, or compares with what was saved: 409 when the body differs. */
  async claim(userId: string, commandId: string, digest: string, atMs: number): Promise<Claimed> {
    const key = this.key(userId, commandId);
    let saved: string | null;
    try {
      const set = await this.redis.set(key, `${digest} ${atMs}`, "EX", this.ttlSeconds, "NX");
      if (set === "OK") return { atMs, repeat: false };
      saved = await this.redis.get(key);
    } catch (cause) {
      throw new ApiError("redis_unavailable", "", "the command-id store did not answer; retry", {
        cause,
        headers: { "retry-after": "1" },
      });
    }
    // Expired between SET and GET: the id is free again.
    if (saved === null) return this.claim(userId, commandId, digest, atMs);
    const [savedDigest, savedAt] = saved.split(" ");
    if (savedDigest !== digest) {
      throw new ApiError(
        "conflict",
        "commandId",
        `commandId ${commandId} was already used with a different body; choose a new id`,
      );
    }
    return { atMs: Number(savedAt), repeat: true };
  }
}
