// Who is calling: a member (HS256 JWT, `sub` = user id, `exp` required), a feature service or an
// admin (bearer tokens from two separate lists). Configured tokens are matched in constant time
// (digests of equal length, every token compared) so neither length nor position leaks.
//
// Member tokens are verified by fast-jwt, synchronously, with the configured key only (a key in
// the token's header is ignored): HS256 only (alg none and other algorithms are refused, so is an
// unknown `crit`), signature compared in constant time, `exp` and `sub` required, `nbf` checked. WebCrypto's verification (jose) cost a trip through
// libuv's thread pool and a few promise hops per new token, the bulk of the API's tail when many
// new tokens arrive at once. Expiry is decided here, by one rule for fresh and remembered tokens:
// expired when `exp <= now` in whole epoch seconds (RFC 7519 4.1.4, jose's rule too).
//
// A member token verified once is remembered (bounded LRU, keyed by the SHA-256 digest of the
// token) with its subject and `exp`, and answered from memory until `exp` passes (a member's
// page asks every few seconds with the same token). Only tokens that passed are remembered: a
// signed token's claims cannot change, and an nbf once passed stays passed.
import { hash, timingSafeEqual } from "node:crypto";
import { createVerifier, TokenError } from "fast-jwt";
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

/** Expired when `exp <= now`, now in whole epoch seconds (jose's rule, jwt_claims_set). */
const notExpired = (expSeconds: number) => expSeconds > Math.floor(Date.now() / 1000);

const INVALID_TOKEN = { headers: { "www-authenticate": 'Bearer error="invalid_token"' } };

/** fast-jwt's refusals of a token's claims, in our words (anything else: not valid). */
const CLAIM_REFUSALS: Partial<Record<string, string>> = {
  [TokenError.codes.missingRequiredClaim]: "the member token lacks a required claim (exp, sub)",
  [TokenError.codes.invalidClaimType]: "a claim of the member token has the wrong type",
  [TokenError.codes.invalidClaimValue]: "a claim of the member token is not valid",
  [TokenError.codes.inactive]: "the member token is not valid yet (nbf)",
};

export class Authenticator {
  private readonly tokens: Array<{ kind: CallerKind; name: string; digest: Buffer }>;
  /** Verifies signature, algorithm and claims; throws fast-jwt's TokenError. */
  private readonly verifyJwt: (token: string) => Record<string, unknown>;
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
    // The key's UTF-8 bytes, as before; fast-jwt's own cache is off (ours counts its lookups).
    this.verifyJwt = createVerifier({
      key: opts.jwtSecret,
      algorithms: ["HS256"],
      requiredClaims: ["exp", "sub"],
      cache: false,
    });
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
  identify(authorization: string | undefined): Caller {
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
    // Expired (verifyMember answers token_expired) or not seen: verify it.
    if (known !== undefined) this.verified.delete(key);
    this.onLookup(false);
    const member = this.verifyMember(presented);
    this.verified.set(key, member);
    return { kind: "member", subject: member.subject };
  }

  private verifyMember(token: string): VerifiedMember {
    let payload: Record<string, unknown>;
    try {
      payload = this.verifyJwt(token);
    } catch (error) {
      // Whatever fails in there is the token's fault: the key was checked at start-up.
      const code = error instanceof TokenError ? error.code : "";
      if (code === TokenError.codes.expired) throw tokenExpired();
      const message = CLAIM_REFUSALS[code] ?? "the member token is not valid";
      throw new ApiError("invalid_token", "authorization", message, INVALID_TOKEN);
    }
    // fast-jwt checked that exp is a number and passed by its millisecond rule; ours is stricter
    // by up to a second, and the same for a remembered token.
    const expSeconds = payload.exp as number;
    if (!notExpired(expSeconds)) throw tokenExpired();
    const sub = payload.sub;
    if (typeof sub !== "string" || !USER_ID.test(sub)) {
      throw new ApiError(
        "invalid_token",
        "authorization",
        "the token's sub is not a user id",
        INVALID_TOKEN,
      );
    }
    return { subject: sub, expSeconds };
  }
}

function tokenExpired(): ApiError {
  return new ApiError(
    "token_expired",
    "authorization",
    "the member token has expired",
    INVALID_TOKEN,
  );
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
