// Goal: a bearer credential is told apart as a member token, a service or an admin credential;
// every bad one is a 401 naming `authorization`, with the right code.
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { Authenticator, requireAccessTo, requireKind } from "./auth.ts";
import { ApiError } from "./errors.ts";

const SECRET = "unit-test-jwt-secret-0123456789abcdef";
const auth = new Authenticator({
  jwtSecret: SECRET,
  serviceTokens: [{ name: "agent", secret: "service-secret-0123456789" }],
  adminTokens: [{ name: "ops", secret: "admin-secret-0123456789" }],
});

async function jwt(claims: { sub?: string; exp?: number }, secret = SECRET, alg = "HS256") {
  const j = new SignJWT({}).setProtectedHeader({ alg });
  if (claims.sub !== undefined) j.setSubject(claims.sub);
  if (claims.exp !== undefined) j.setExpirationTime(claims.exp);
  return j.sign(new TextEncoder().encode(secret));
}

async function refusal(header: string | undefined): Promise<{ code: string; field: string }> {
  try {
    await auth.identify(header);
  } catch (error) {
    if (error instanceof ApiError) return { code: error.code, field: error.field };
    throw error;
  }
  throw new Error("expected a refusal");
}

const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

describe("Authenticator", () => {
  it("names the caller of each kind of credential", async () => {
    expect(await auth.identify("Bearer service-secret-0123456789")).toEqual({
      kind: "service",
      subject: "agent",
    });
    expect(await auth.identify("bearer admin-secret-0123456789")).toEqual({
      kind: "admin",
      subject: "ops",
    });
    expect(await auth.identify(`Bearer ${await jwt({ sub: "ann", exp: inAnHour() })}`)).toEqual({
      kind: "member",
      subject: "ann",
    });
  });

  it("refuses missing, unknown, forged, expired and incomplete credentials", async () => {
    const field = "authorization";
    expect(await refusal(undefined)).toEqual({ code: "unauthorized", field });
    expect(await refusal("Bearer nope")).toEqual({ code: "unauthorized", field });
    expect(await refusal("Token admin-secret-0123456789")).toEqual({ code: "unauthorized", field });
    const forged = await jwt(
      { sub: "ann", exp: inAnHour() },
      "another-secret-0123456789abcdefghij",
    );
    expect(await refusal(`Bearer ${forged}`)).toEqual({ code: "invalid_token", field });
    const expired = await jwt({ sub: "ann", exp: Math.floor(Date.now() / 1000) - 10 });
    expect(await refusal(`Bearer ${expired}`)).toEqual({ code: "token_expired", field });
    expect(await refusal(`Bearer ${await jwt({ sub: "ann" })}`)).toEqual({
      code: "invalid_token",
      field,
    });
    expect(await refusal(`Bearer ${await jwt({ exp: inAnHour() })}`)).toEqual({
      code: "invalid_token",
      field,
    });
    const badSub = await jwt({ sub: "a b", exp: inAnHour() });
    expect(await refusal(`Bearer ${badSub}`)).toEqual({ code: "invalid_token", field });
    const hs512 = await jwt({ sub: "ann", exp: inAnHour() }, SECRET, "HS512");
    expect(await refusal(`Bearer ${hs512}`)).toEqual({ code: "invalid_token", field });
  });

  it("lets a member read only their own data, and routes take only their kinds", () => {
    const member = { kind: "member" as const, subject: "ann" };
    expect(() => requireAccessTo(member, "ann")).not.toThrow();
    expect(() => requireAccessTo(member, "bob")).toThrow(ApiError);
    expect(() => requireAccessTo({ kind: "admin", subject: "ops" }, "bob")).not.toThrow();
    expect(() => requireKind(member, ["admin"])).toThrow(ApiError);
  });
});
