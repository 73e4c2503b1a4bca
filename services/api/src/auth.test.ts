// Goal: a bearer credential is told apart as a member token, a service or an admin credential;
// every bad one is a 401 naming `authorization`, with the right code.
import { createHmac } from "node:crypto";
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
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
/** A token signed with the right key whatever its header says (jose refuses to sign some). */
function raw(header: object, claims: object): string {
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${createHmac("sha256", SECRET).update(input).digest("base64url")}`;
}

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

  it("takes HS256 with exp and sub only, every claim of the right type and in force", async () => {
    const field = "authorization";
    const sub = "ann";
    const now = Math.floor(Date.now() / 1000);
    expect(
      await auth.identify(`Bearer ${raw({ alg: "HS256" }, { sub, exp: inAnHour() })}`),
    ).toEqual({ kind: "member", subject: sub });
    const refused: [object, object, string][] = [
      [{ alg: "none" }, { sub, exp: inAnHour() }, "invalid_token"],
      [{ alg: "HS256", crit: ["x"], x: 1 }, { sub, exp: inAnHour() }, "invalid_token"],
      [{ alg: "HS256" }, { sub, exp: String(inAnHour()) }, "invalid_token"],
      [{ alg: "HS256" }, { sub, exp: null }, "invalid_token"],
      [{ alg: "HS256" }, { sub, exp: [inAnHour()] }, "invalid_token"],
      [{ alg: "HS256" }, { sub: 42, exp: inAnHour() }, "invalid_token"],
      [{ alg: "HS256" }, { sub, exp: inAnHour(), nbf: inAnHour() }, "invalid_token"],
      [{ alg: "HS256" }, { sub, exp: now }, "token_expired"],
    ];
    for (const [header, claims, code] of refused) {
      const token = raw(header, claims);
      expect({ header, claims, ...(await refusal(`Bearer ${token}`)) }).toEqual({
        header,
        claims,
        code,
        field,
      });
    }
    // Without its signature, or with the signature of another header, a token is nothing.
    const good = raw({ alg: "HS256" }, { sub, exp: inAnHour() });
    const [, payload, signature] = good.split(".");
    expect(await refusal(`Bearer ${b64({ alg: "none" })}.${payload}.`)).toEqual({
      code: "invalid_token",
      field,
    });
    expect(
      await refusal(`Bearer ${b64({ alg: "HS256", typ: "JWT" })}.${payload}.${signature}`),
    ).toEqual({ code: "invalid_token", field });
  });

  it("lets a member read only their own data, and routes take only their kinds", () => {
    const member = { kind: "member" as const, subject: "ann" };
    expect(() => requireAccessTo(member, "ann")).not.toThrow();
    expect(() => requireAccessTo(member, "bob")).toThrow(ApiError);
    expect(() => requireAccessTo({ kind: "admin", subject: "ops" }, "bob")).not.toThrow();
    expect(() => requireKind(member, ["admin"])).toThrow(ApiError);
  });
});
