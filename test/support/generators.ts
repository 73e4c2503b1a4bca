// Seeded generators of bad input, shared by the two halves of the barrage
// (test/integration/barrage-kafka.test.ts, barrage-http.test.ts): draws from one seeded random
// stream, a random merge that keeps each list's order, Avro written by hand for values avsc
// refuses to write, JSON of a type a schema does not admit or with number tokens JSON.stringify
// cannot write, and member credentials good and bad. No I/O: one seed gives the same inputs.
import { randomBytes } from "node:crypto";
import type { Random } from "@creditflow/loadgen";
import { SignJWT } from "jose";
import { memberToken } from "../../services/api/testing/harness.ts";

export type Chooser = ReturnType<typeof chooser>;

/** Integers, picks, weighted kinds, bytes and printable text, all drawn from `random`. */
export function chooser(random: Random) {
  const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  /** A key of `table` drawn in proportion to its `w`. */
  const weighted = <K extends string>(table: Record<K, { w: number }>): K => {
    const entries = Object.entries(table) as [K, { w: number }][];
    let r = random() * entries.reduce((s, [, v]) => s + v.w, 0);
    for (const [k, v] of entries) {
      r -= v.w;
      if (r < 0) return k;
    }
    return entries[entries.length - 1]![0];
  };
  const bytes = (n: number) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = int(0, 255);
    return b;
  };
  const text = (n: number) =>
    Array.from({ length: n }, () => String.fromCharCode(int(0x21, 0x7e))).join("");
  return { random, int, pick, weighted, bytes, text };
}

/** A uniformly random merge of two lists that keeps each list's own order. */
export function interleave<T>(random: Random, a: T[], b: T[]): T[] {
  const out: T[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (random() * (a.length - i + b.length - j) < a.length - i) out.push(a[i++]!);
    else out.push(b[j++]!);
  }
  return out;
}

// ---------------------------------------------------------------- Avro by hand

/** An Avro long (zigzag varint), for values avsc refuses to write. */
export function avroLong(n: bigint): Buffer {
  let z = (n << 1n) ^ (n >> 63n);
  const out: number[] = [];
  for (; z >= 0x80n; z >>= 7n) out.push(Number((z & 0x7fn) | 0x80n));
  out.push(Number(z));
  return Buffer.from(out);
}

/** An Avro string: its byte length as a long, then its UTF-8 bytes. */
export const avroString = (s: string) =>
  Buffer.concat([avroLong(BigInt(Buffer.byteLength(s))), Buffer.from(s)]);

/** The Confluent wire format around an Avro body: magic byte 0, then the schema id. */
export function confluentFrame(schemaId: number, body: Buffer[]): Buffer {
  const h = Buffer.alloc(5);
  h.writeInt32BE(schemaId, 1);
  return Buffer.concat([h, ...body]);
}

// ---------------------------------------------------------------- JSON

/** The part of a JSON Schema (TypeBox, OpenAPI) the generators read. */
export type Schema = {
  type?: string | string[];
  anyOf?: Schema[];
  properties?: Record<string, Schema>;
  required?: string[];
};

/** The JSON types a schema admits ("integer": whole numbers only). */
export function jsonTypes(s: Schema): Set<string> {
  const out = new Set<string>([s.type ?? []].flat());
  for (const b of s.anyOf ?? []) for (const t of jsonTypes(b)) out.add(t);
  return out;
}

/** A value of a JSON type the schema does not admit. */
export function wrongTypeValue(c: Chooser, s: Schema): unknown {
  const types = jsonTypes(s);
  const admitted = (t: string) =>
    types.has(t) || ((t === "integer" || t === "float") && types.has("number"));
  const candidates: [string, unknown][] = [
    ["string", `s${c.text(4)}`],
    ["integer", c.int(-5, 5)],
    ["float", c.int(-50, 50) + 0.5],
    ["boolean", c.random() < 0.5],
    ["null", null],
    ["array", [c.int(0, 9)]],
    ["object", { a: c.int(0, 9) }],
  ];
  return c.pick(candidates.filter(([t]) => !admitted(t)))[1];
}

/**
 * A string `serialize` writes as a bare JSON token: `${RAW}1e400` becomes 1e400, which a JSON
 * parser reads as Infinity and JSON.stringify cannot write.
 */
export const RAW = "\u0000raw:";

/** JSON.stringify, with RAW strings written as bare tokens. */
export const serialize = (body: unknown) =>
  JSON.stringify(body).replace(/"\\u0000raw:([^"]*)"/g, "$1");

// ---------------------------------------------------------------- credentials

export interface MemberCredentials {
  /** A valid token of each member, in the order given. */
  members: string[];
  /** The first member's token, expired a minute ago. */
  expired: string;
  /** Tokens a member might present that the API must refuse as invalid. */
  invalid: string[];
  /** Member tokens that claim more than a member is (admin, service): still members. */
  pretenders: string[];
}

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");

/**
 * Member tokens a client could present, good and bad, signed with `secret` (HS256) or not; the
 * pretenders claim the admin and service token names the API knows. Needs two members or more.
 */
export async function memberCredentials(o: {
  secret: string;
  members: string[];
  adminName: string;
  serviceName: string;
}): Promise<MemberCredentials> {
  const [first, second] = o.members as [string, string];
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const key = new TextEncoder().encode(o.secret);
  const valid = await memberToken(first, { secret: o.secret });
  const [h, , s] = valid.split(".");
  const sign = (claims: object, alg = "HS256") =>
    new SignJWT({ ...claims }).setProtectedHeader({ alg }).sign(key);
  return {
    members: await Promise.all(o.members.map((u) => memberToken(u, { secret: o.secret }))),
    expired: await memberToken(first, { secret: o.secret, expiresInSeconds: -60 }),
    invalid: [
      await memberToken(first, { secret: randomBytes(32).toString("hex") }),
      `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: first, exp })}.`,
      `${b64({ alg: "none" })}.${b64({ sub: first, exp })}.${s}`,
      `${h}.${b64({ sub: second, exp })}.${s}`, // tampered payload, original signature
      await sign({ sub: first, exp }, "HS512"),
      await sign({ sub: first }), // no exp
      await sign({ exp }), // no sub
      await sign({ sub: "has space", exp }),
      await sign({ sub: first, exp, nbf: exp }),
      `${valid.slice(0, -2)}${valid.endsWith("AA") ? "BB" : "AA"}`, // another signature
    ],
    pretenders: [
      await sign({ sub: o.adminName, exp, kind: "admin", role: "admin", scope: "admin" }),
      await sign({ sub: o.serviceName, exp, kind: "service" }),
    ],
  };
}
