// Who is calling: a member (HS256 JWT, `sub` = user id, `exp` required), a feature service or an
// admin (bearer tokens from two separate lists). Configured tokens are matched in constant time
// (digests of equal length, every token compared) so neither length nor position leaks.
//
// A member token verified once is remembered (bounded LRU, keyed by the SHA-256 digest of the
// token) with its subject and `exp`, and answered from memory until `exp` passes, by the same
// rule jose applies; jose's HMAC verification is most of a request's CPU otherwise (a member's
// page asks every few seconds with the same token). Only tokens that passed are remembered, and
// the answer is jose's own: a signed token's claims cannot change, nbf once passed stays passed.
import { hash, timingSafeEqual, webcrypto } from "node:crypto";
import { errors as joseErrors, jwtVerify } from "jose";
import { BoundedCache } from "./bounded-cache.ts";
import { ApiError } from "./errors.ts";
import { DEFAULT_API_LIMITS, type NamedToken } from "./options.ts";

export type CallerKind = "member" | "service" | "admin";

export interface Caller {
  kind: CallerKind;
  /** The member's user id, or the credential's configured name. */
  subject: string;
}

const sha256 = (s: string): Buffer => hash("sha256", s, "buffer");
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
/** A member id as the rest of the system accepts it (contracts' ID_PATTERN). */
const USER_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A member token that passed verification: who it names and when it expires (epoch seconds). */
interface VerifiedMember {
  subject: string;
  expSeconds: number;
}

export interface AuthenticatorCache {
  /** Member tokens remembered at once (0: verify every request). */
  memberTokenCacheEntries: number;
  /** Told of every lookup of a member token in memory (metrics). */
  onLookup?: (hit: boolean) => void;
}

/** jose's rule (jwt_claims_set): expired when `exp <= now`, now in whole epoch seconds. */
const notExpired = (expSeconds: number) => expSeconds > Math.floor(Date.now() / 1000);

export class Authenticator {
  private readonly tokens: Array<{ kind: CallerKind; name: string; digest: Buffer }>;
  private readonly jwtSecret: Uint8Array;
  /** The HMAC key imported once: jose imports a raw key again on every verification otherwise. */
  private jwtKey: Promise<webcrypto.CryptoKey> | null = null;
  private readonly verified: BoundedCache<string, VerifiedMember>;
  private readonly onLookup: (hit: boolean) => void;

  constructor(
    opts: { jwtSecret: string; serviceTokens: NamedToken[]; adminTokens: NamedToken[] },
    cache: AuthenticatorCache = {
      memberTokenCacheEntries: DEFAULT_API_LIMITS.memberTokenCacheEntries,
    },
  ) {
    this.verified = new BoundedCache(cache.memberTokenCacheEntries);
    this.onLookup = cache.onLookup ?? (() => undefined);
    this.jwtSecret = new TextEncoder().encode(opts.jwtSecret);
    this.tokens = [
      ...opts.serviceTokens.map((t) => ({
        kind: "service" as const,
        name: t.name,
        digest: sha256(t.secret),
      })),
      ...opts.adminTokens.map((t) => ({
        kind: "admin" as const,
        name: t.name,
        digest: sha256(t.secret),
      })),
    ];
  }

  /** The caller of an `Authorization` header; ApiError (401) when there is none or it is bad. */
  async identify(authorization: string | undefined): Promise<Caller> {
    const challenge = { headers: { "www-authenticate": "Bearer" } };
    if (typeof authorization !== "string" || authorization === "") {
      throw new ApiError(
        "unauthorized",
        "authorization",
        "a bearer credential is required",
        challenge,
      );
    }
    const match = /^Bearer[ \t]+(\S+)\s*$/i.exec(authorization);
    if (match === null) {
      throw new ApiError(
        "unauthorized",
        "authorization",
        "expected `Bearer <credential>`",
        challenge,
      );
    }
    const presented = match[1]!;
    const digest = sha256(presented);
    let found: Caller | null = null;
    for (const t of this.tokens) {
      if (timingSafeEqual(digest, t.digest) && found === null) {
        found = { kind: t.kind, subject: t.name };
      }
    }
    if (found !== null) return found;
    if (!JWT_SHAPE.test(presented)) {
      throw new ApiError(
        "unauthorized",
        "authorization",
        "the credential is not recognised",
        challenge,
      );
    }
    const key = digest.toString("base64");
    const known = this.verified.get(key);
    if (known !== undefined && notExpired(known.expSeconds)) {
      this.onLookup(true);
      return { kind: "member", subject: known.subject };
    }
    // Expired (jose answers token_expired below) or not seen: verify it.
    if (known !== undefined) this.verified.delete(key);
    this.onLookup(false);
    const member = await this.verifyMember(presented);
    if (notExpired(member.expSeconds)) this.verified.set(key, member);
    return { kind: "member", subject: member.subject };
  }

  private async verifyMember(token: string): Promise<VerifiedMember> {
    try {
      this.jwtKey ??= webcrypto.subtle.importKey(
        "raw",
        this.jwtSecret,
        { name: "HMAC", hash: "SHA-256" },
        false,
        ["verify"],
      );
      const { payload } = await jwtVerify(token, await this.jwtKey, {
        algorithms: ["HS256"],
        requiredClaims: ["exp", "sub"],
      });
      const sub = payload.sub;
      if (typeof sub !== "string" || !USER_ID.test(sub)) {
        throw new ApiError("invalid_token", "authorization", "the token's sub is not a user id", {
          headers: { "www-authenticate": 'Bearer error="invalid_token"' },
        });
      }
      // requiredClaims and jose's claim checks make exp a number here.
      return { subject: sub, expSeconds: payload.exp as number };
    } catch (error) {
      if (error instanceof ApiError) throw error;
      if (error instanceof joseErrors.JWTExpired) {
        throw new ApiError("token_expired", "authorization", "the member token has expired", {
          headers: { "www-authenticate": 'Bearer error="invalid_token"' },
        });
      }
      if (error instanceof joseErrors.JWTClaimValidationFailed) {
        throw new ApiError(
          "invalid_token",
          "authorization",
          `the member token's ${error.claim} claim is missing or invalid`,
          { headers: { "www-authenticate": 'Bearer error="invalid_token"' } },
        );
      }
      throw new ApiError("invalid_token", "authorization", "the member token is not valid", {
        headers: { "www-authenticate": 'Bearer error="invalid_token"' },
      });
    }
  }
}

/** Refuses a caller of a kind the route does not take (403: authenticated, but not for this). */
export function requireKind(caller: Caller, kinds: readonly CallerKind[]): void {
  if (!kinds.includes(caller.kind)) {
    throw new ApiError(
      "forbidden",
      "authorization",
      `this endpoint takes a ${kinds.join(" or ")} credential, not a ${caller.kind} one`,
    );
  }
}

/** A member reads only their own data; admins and services read anyone's. */
export function requireAccessTo(caller: Caller, userId: string): void {
  if (caller.kind === "member" && caller.subject !== userId) {
    throw new ApiError("forbidden", "userId", "a member may read only their own balance");
  }
}
