// Service-token authentication: `Authorization: Bearer <secret>` matched against every
// configured token in constant time (digests of equal length, every token compared), so
// neither the length nor the position of a match leaks through timing.
import { createHash, timingSafeEqual } from "node:crypto";
import type { ServiceToken } from "./options.ts";

const sha256 = (s: string) => createHash("sha256").update(s).digest();

export class TokenVerifier {
  private readonly tokens: Array<{ name: string; digest: Buffer }>;

  constructor(tokens: ServiceToken[]) {
    this.tokens = tokens.map((t) => ({ name: t.name, digest: sha256(t.secret) }));
  }

  /** The token's name, or null when the header carries no configured token. */
  verify(authorization: string | undefined): string | null {
    if (typeof authorization !== "string") return null;
    const match = /^Bearer[ \t]+(\S+)\s*$/i.exec(authorization);
    if (match === null) return null;
    const presented = sha256(match[1]!);
    let found: string | null = null;
    for (const t of this.tokens) {
      if (timingSafeEqual(presented, t.digest) && found === null) found = t.name;
    }
    return found;
  }
}
