// Goal: a member token verified once is answered from memory exactly as a fresh verification
// would answer it: the same subject until its exp, token_expired from the second of its exp on,
// and nothing that failed verification (or another token naming the same member) is ever let
// through by it.
import { SignJWT } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Authenticator } from "./auth.ts";
import { ApiError } from "./errors.ts";

const SECRET = "unit-test-jwt-secret-0123456789abcdef";
const credentials = { jwtSecret: SECRET, serviceTokens: [], adminTokens: [] };
const T0_MS = Date.UTC(2026, 10, 25, 12, 0, 0);

async function jwt(sub: string, expSeconds: number, secret = SECRET): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setExpirationTime(expSeconds)
    .sign(new TextEncoder().encode(secret));
}

/** The caller's subject, or the refusal's code. */
async function answer(auth: Authenticator, token: string): Promise<string> {
  try {
    return (await auth.identify(`Bearer ${token}`)).subject;
  } catch (error) {
    if (error instanceof ApiError) return error.code;
    throw error;
  }
}

function cached(entries: number) {
  const lookups: boolean[] = [];
  const auth = new Authenticator(credentials, {
    memberTokenCacheEntries: entries,
    onLookup: (hit) => lookups.push(hit),
  });
  return { auth, lookups };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("Authenticator's memory of verified member tokens", () => {
  it("answers from memory until exp, then token_expired at the same instant as without memory", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(T0_MS);
    const expSeconds = T0_MS / 1000 + 10;
    const token = await jwt("ann", expSeconds);
    const { auth, lookups } = cached(10);
    const uncached = new Authenticator(credentials, { memberTokenCacheEntries: 0 });

    expect(await answer(auth, token)).toBe("ann");
    expect(await answer(auth, token)).toBe("ann");
    vi.setSystemTime(expSeconds * 1000 - 1);
    expect(await answer(auth, token)).toBe("ann");
    expect(await answer(uncached, token)).toBe("ann");
    expect(lookups).toEqual([false, true, true]);

    vi.setSystemTime(expSeconds * 1000);
    expect(await answer(uncached, token)).toBe("token_expired");
    expect(await answer(auth, token)).toBe("token_expired");
    expect(await answer(auth, token)).toBe("token_expired");
    expect(lookups).toEqual([false, true, true, false, false]);
  });

  it("remembers only tokens that passed, each by its own bytes", async () => {
    const inAnHour = Math.floor(Date.now() / 1000) + 3600;
    const { auth, lookups } = cached(10);
    const good = await jwt("ann", inAnHour);
    const forged = await jwt("ann", inAnHour, "another-secret-0123456789abcdefghij");
    const [header, payload, signature] = good.split(".");
    const sig = signature!;
    const tampered = `${header}.${payload}.${sig.slice(0, 5)}${sig[5] === "A" ? "B" : "A"}${sig.slice(6)}`;

    expect(await answer(auth, good)).toBe("ann");
    for (let i = 0; i < 2; i++) {
      expect(await answer(auth, forged)).toBe("invalid_token");
      expect(await answer(auth, tampered)).toBe("invalid_token");
    }
    expect(await answer(auth, good)).toBe("ann");
    expect(lookups).toEqual([false, false, false, false, false, true]);
  });

  it("holds at most its bound, dropping the token used longest ago", async () => {
    const inAnHour = Math.floor(Date.now() / 1000) + 3600;
    const { auth, lookups } = cached(2);
    const [a, b, c] = await Promise.all(["ann", "bob", "cy"].map((u) => jwt(u, inAnHour)));
    for (const token of [a!, b!, a!, c!, a!, b!]) await answer(auth, token);
    // a miss, b miss, a hit, c miss (drops b), a hit, b miss
    expect(lookups).toEqual([false, false, true, false, true, false]);
  });
});
