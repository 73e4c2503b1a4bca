// Goal: the access rules of docs/product-rules.md hold for every route, beyond the cases api.test.ts pins. A
// member token reads only its own member (another member's id, known or not, is the same 403
// without data) and cannot call admin or service endpoints; claims added to a member token make
// it nothing more; expired, foreign-key, alg=none, other-algorithm, tampered and claim-less tokens
// are 401; a service or admin secret is not a signing key; the ingest takes its own tokens only.
// Secrets come from configuration: the API, the ingest and the CLI refuse to start without them,
// naming the setting, and no tracked file holds a secret value, a private key or a random token.

import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { type Api, ApiOptionError } from "@creditflow/api";
import { DAY_MS, HOUR_MS } from "@creditflow/engine";
import { buildIngest, type Ingest } from "@creditflow/ingest";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildMember,
  memberToken,
  usage,
  writeMember,
} from "../../services/api/testing/harness.ts";
import { fixture } from "../support/fixture.ts";
import { expectRefusal as expectRefusalBody } from "../support/refusals.ts";

const fx = fixture(import.meta.url, { partitions: 3 });
const { iso, urls, config } = fx;
const topics = fx.topicNames();
const repo = new URL("../../", import.meta.url).pathname;
const JWT_SECRET = randomBytes(32).toString("hex");
const SERVICE = `svc-${randomBytes(16).toString("hex")}`;
const ADMIN = `adm-${randomBytes(16).toString("hex")}`;
const INGEST = `ing-${randomBytes(16).toString("hex")}`;
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
const exp = () => Math.floor(Date.now() / 1000) + 3600;

let api: Api;
let ingest: Ingest;
let paths: Record<string, Record<string, unknown>>;

/** The API's options apart from the fixture's: its own secrets, no history database. */
const apiOptions = () => ({
  clickhouseDatabase: `${iso.database}_none`,
  jwtSecret: JWT_SECRET,
  serviceTokens: [{ name: "agent-svc", secret: SERVICE }],
  adminTokens: [{ name: "ops", secret: ADMIN }],
  limits: { memberRequestsPerWindow: 100_000, anonymousRequestsPerWindow: 100_000 },
});

beforeAll(async () => {
  await fx.topics();
  const now = Date.now();
  for (const user of ["sa", "sb"]) {
    const m = buildMember(config, user, now - 3 * DAY_MS, [
      usage(user, `${user}-e0`, `${user}-t0`, "chat", "kimi-k2", 77_777, now - HOUR_MS),
    ]);
    await writeMember(fx.redis, iso.keyPrefix, m.state, 1);
  }
  api = await fx.startApi(apiOptions());
  ingest = await buildIngest({
    brokers: urls.kafkaBrokers,
    schemaRegistryUrl: urls.schemaRegistryUrl,
    rateCard: config.rateCard,
    topics,
    tokens: [{ name: "agent-svc", secret: INGEST }],
    logger: false,
  });
  paths = (await api.app.inject({ url: "/docs/json" })).json().paths;
});

afterAll(async () => {
  await ingest?.close();
});

async function call(method: string, url: string, headers: Record<string, string>, body?: object) {
  const r = await api.app.inject({
    method: method as "GET",
    url,
    headers,
    ...(body === undefined ? {} : { payload: body }),
  });
  return { status: r.statusCode, body: r.json(), text: r.body, headers: r.headers };
}

/** Every documented route with a valid body for it, and which callers it takes. */
function routes() {
  const grantBody = {
    amountMicros: 1_000_000,
    expiresAt: new Date(Date.now() + 30 * DAY_MS).toISOString(),
  };
  const bodies: Record<string, object> = {
    "bonus-grants": grantBody,
    subscription: { tierId: "plus", billing: "monthly" },
    change: { tierId: "pro" },
    adjustments: { amountMicros: -1_000, reason: "security test" },
    "legacy-migration": { unusedUses: { ppt: 1 } },
  };
  let n = 0;
  return Object.entries(paths).flatMap(([path, methods]) =>
    Object.keys(methods).map((m) => {
      const method = m.toUpperCase();
      const url = (user: string) =>
        path.replace("{userId}", user).replace("{grantId}", "some-grant");
      const last = path.split("/").pop()!;
      const kinds = path.startsWith("/v1/admin/")
        ? ["admin"]
        : path === "/v1/admission"
          ? ["service"]
          : path.startsWith("/v1/me/")
            ? ["member"]
            : ["member", "service", "admin"];
      const body = () =>
        method === "GET"
          ? undefined
          : path === "/v1/admission"
            ? { userId: "sb", feature: "chat" }
            : { commandId: `sec-${n++}`, ...(bodies[last] ?? {}) };
      return { key: `${method} ${path}`, method, path, url, kinds, body };
    }),
  );
}

function commandsOnKafka(): Promise<number> {
  return fx.topicSize(topics.commands);
}

/** The refusal body (refusals.ts), with nothing of the other member travelling with it. */
function expectRefusal(
  r: { status: number; body: unknown; text: string },
  status: number,
  code: string,
  field: string,
) {
  expectRefusalBody(r, status, code, field);
  expect(r.text).not.toMatch(/remaining|Micros|bonusGrants|transactions|77777/);
}

describe("a member token", () => {
  it("reads its own member only: another member's id, known or not, is the same 403", async () => {
    const alice = bearer(await memberToken("sa", { secret: JWT_SECRET }));
    const memberRoutes = routes().filter(
      (r) => r.path.includes("{userId}") && r.kinds.includes("member"),
    );
    expect(memberRoutes.length).toBeGreaterThanOrEqual(2);
    for (const r of memberRoutes) {
      expect((await call(r.method, r.url("sa"), alice)).status, r.key).toBe(200);
      const answers = [];
      for (const other of ["sb", "ghost", "SA", "sa.", "ops", "agent-svc"]) {
        const res = await call(r.method, r.url(other), alice);
        expectRefusal(res, 403, "forbidden", "userId");
        answers.push(res.text.replaceAll(other, "<id>"));
      }
      // A known and an unknown member answer alike: no probing which members exist.
      expect(new Set(answers).size, r.key).toBe(1);
    }
    // The /me routes take no other id from the query or headers.
    const me = await call("GET", "/v1/me/balance?userId=sb&sub=sb", {
      ...alice,
      "x-user-id": "sb",
      "x-forwarded-user": "sb",
    });
    expect(me.body.userId).toBe("sa");
  });

  it("cannot call admin or service endpoints, however it is dressed up; nothing is sent", async () => {
    const sign = (claims: object) =>
      new SignJWT({ ...claims })
        .setProtectedHeader({ alg: "HS256" })
        .sign(new TextEncoder().encode(JWT_SECRET));
    const tokens = [
      await memberToken("sa", { secret: JWT_SECRET }),
      // A member whose id is an admin's or a service's name, with every claim a role could be in.
      await sign({ sub: "ops", exp: exp(), kind: "admin", role: "admin", roles: ["admin"] }),
      await sign({ sub: "agent-svc", exp: exp(), kind: "service", scope: "service admin" }),
      await sign({ sub: "sa", exp: exp(), admin: true, typ: "admin" }),
    ];
    const before = await commandsOnKafka();
    const guarded = routes().filter((r) => !r.kinds.includes("member"));
    expect(guarded.map((r) => r.key)).toEqual(
      expect.arrayContaining([
        "POST /v1/admission",
        "POST /v1/admin/members/{userId}/bonus-grants",
      ]),
    );
    for (const r of guarded) {
      for (const token of tokens) {
        for (const user of ["sa", "sb"]) {
          const res = await call(r.method, r.url(user), bearer(token), r.body());
          expectRefusal(res, 403, "forbidden", "authorization");
        }
      }
    }
    expect(await commandsOnKafka()).toBe(before);
  });
});

describe("credentials of the wrong kind", () => {
  it("take no route outside their kind, on every route", async () => {
    const kinds: Record<string, Record<string, string>> = {
      member: bearer(await memberToken("sa", { secret: JWT_SECRET })),
      service: bearer(SERVICE),
      admin: bearer(ADMIN),
    };
    const before = await commandsOnKafka();
    let allowed = 0;
    for (const r of routes()) {
      for (const [kind, headers] of Object.entries(kinds)) {
        const res = await call(r.method, r.url("sa"), headers, r.body());
        if (r.kinds.includes(kind)) {
          expect(res.status, `${kind} on ${r.key}`).toBeLessThan(300);
          allowed += r.method === "POST" && kind === "admin" ? 1 : 0;
        } else {
          expectRefusal(res, 403, "forbidden", "authorization");
        }
      }
    }
    // Only the admin's own calls reached Kafka.
    expect(await commandsOnKafka()).toBe(before + allowed);
  });
});

describe("forged and broken member tokens", () => {
  it("are refused with 401 on every member route, with a challenge", async () => {
    const key = new TextEncoder().encode(JWT_SECRET);
    const valid = await memberToken("sa", { secret: JWT_SECRET });
    const [header, payload, signature] = valid.split(".") as [string, string, string];
    const sign = (claims: object, alg = "HS256", secret: Uint8Array = key, extra: object = {}) =>
      new SignJWT({ ...claims }).setProtectedHeader({ alg, ...extra }).sign(secret);
    const text = (s: string) => new TextEncoder().encode(s);
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
    const forged: [string, string, string][] = [
      [
        "expired",
        await memberToken("sa", { secret: JWT_SECRET, expiresInSeconds: -5 }),
        "token_expired",
      ],
      [
        "another key",
        await memberToken("sa", { secret: randomBytes(32).toString("hex") }),
        "invalid_token",
      ],
      [
        "the admin secret as key",
        await sign({ sub: "sa", exp: exp() }, "HS256", text(ADMIN)),
        "invalid_token",
      ],
      [
        "the service secret as key",
        await sign({ sub: "sa", exp: exp() }, "HS256", text(SERVICE)),
        "invalid_token",
      ],
      [
        "alg none",
        `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "sa", exp: exp() })}.`,
        "invalid_token",
      ],
      ["alg None", `${b64({ alg: "None" })}.${b64({ sub: "sb", exp: exp() })}.`, "invalid_token"],
      [
        "alg none, old signature",
        `${b64({ alg: "none" })}.${payload}.${signature}`,
        "invalid_token",
      ],
      ["HS512, right key", await sign({ sub: "sa", exp: exp() }, "HS512"), "invalid_token"],
      ["HS384, right key", await sign({ sub: "sa", exp: exp() }, "HS384"), "invalid_token"],
      ["tampered sub", `${header}.${b64({ ...claims, sub: "sb" })}.${signature}`, "invalid_token"],
      [
        "tampered exp",
        `${header}.${b64({ ...claims, exp: claims.exp + 86_400 })}.${signature}`,
        "invalid_token",
      ],
      ["no signature", `${header}.${payload}.`, "invalid_token"],
      ["no exp", await sign({ sub: "sa" }), "invalid_token"],
      ["exp as text", await sign({ sub: "sa", exp: String(exp()) }), "invalid_token"],
      ["no sub", await sign({ exp: exp() }), "invalid_token"],
      ["sub a number", await sign({ sub: 42, exp: exp() }), "invalid_token"],
      ["sub empty", await sign({ sub: "", exp: exp() }), "invalid_token"],
      ["sub not an id", await sign({ sub: "sa/../sb", exp: exp() }), "invalid_token"],
      ["not yet valid", await sign({ sub: "sa", exp: exp(), nbf: exp() }), "invalid_token"],
      // A key of the attacker's own, embedded in the header: the API's key decides.
      [
        "embedded jwk",
        await sign({ sub: "sa", exp: exp() }, "HS256", text("k".repeat(40)), {
          jwk: { kty: "oct", k: b64({}) },
        }),
        "invalid_token",
      ],
      [
        "unknown kid",
        await sign({ sub: "sa", exp: exp() }, "HS256", text("k".repeat(40)), {
          kid: "../../dev/null",
        }),
        "invalid_token",
      ],
    ];
    const memberRoutes = routes().filter((r) => r.kinds.includes("member"));
    for (const [name, token, code] of forged) {
      for (const r of memberRoutes) {
        const res = await call(r.method, r.url("sa"), bearer(token));
        expect({ name, route: r.key, status: res.status, code: res.body.error?.code }).toEqual({
          name,
          route: r.key,
          status: 401,
          code,
        });
        expectRefusal(res, 401, code, "authorization");
        expect(String(res.headers["www-authenticate"]), name).toMatch(/^Bearer/);
      }
    }
    // The token is read from the Authorization header only.
    for (const url of [`/v1/me/balance?access_token=${valid}`, `/v1/me/balance?token=${valid}`]) {
      expectRefusal(await call("GET", url, {}), 401, "unauthorized", "authorization");
    }
    expectRefusal(
      await call("GET", "/v1/me/balance", { cookie: `token=${valid}; access_token=${valid}` }),
      401,
      "unauthorized",
      "authorization",
    );
  });

  it("stops working when it expires, though it worked a moment before", async () => {
    const soon = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("sa")
      .setExpirationTime(Math.floor(Date.now() / 1000) + 2)
      .sign(new TextEncoder().encode(JWT_SECRET));
    expect((await call("GET", "/v1/me/balance", bearer(soon))).status).toBe(200);
    await new Promise((r) => setTimeout(r, 3_100));
    expectRefusal(
      await call("GET", "/v1/me/balance", bearer(soon)),
      401,
      "token_expired",
      "authorization",
    );
  });

  it("the ingest takes its own service tokens only", async () => {
    const event = {
      eventId: "sec-e1",
      userId: "sa",
      taskId: "sec-t1",
      feature: "chat",
      model: "kimi-k2",
      inputTokens: 1,
      outputTokens: 1,
      occurredAt: Date.now(),
    };
    const member = await memberToken("sa", { secret: JWT_SECRET });
    for (const token of [member, ADMIN, SERVICE, JWT_SECRET, `${INGEST}x`]) {
      const r = await ingest.app.inject({
        method: "POST",
        url: "/v1/usage",
        headers: bearer(token),
        payload: event,
      });
      expect({ status: r.statusCode, error: r.json().error }).toEqual({
        status: 401,
        error: { code: "unauthorized", field: "authorization", message: expect.any(String) },
      });
    }
  });
});

describe("secrets come from configuration", () => {
  /** Runs a service entry with only the given settings; resolves with its exit code and output. */
  function start(entry: string, args: string[], env: Record<string, string>) {
    return new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn(process.execPath, [entry, ...args], {
        cwd: repo,
        // Unreachable services: a start that got past its checks would fail otherwise, and
        // nothing reaches the shared stack.
        env: {
          PATH: process.env.PATH ?? "",
          HOME: process.env.HOME ?? "",
          KAFKA_BROKERS: "127.0.0.1:1",
          SCHEMA_REGISTRY_URL: "http://127.0.0.1:1",
          REDIS_URL: "redis://127.0.0.1:1",
          CLICKHOUSE_URL: "http://127.0.0.1:1",
          CF_API_PORT: "0",
          CF_INGEST_PORT: "0",
          ...env,
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let output = "";
      child.stdout.on("data", (d) => (output += d));
      child.stderr.on("data", (d) => (output += d));
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      child.on("exit", (code) => {
        clearTimeout(timer);
        resolve({ code, output });
      });
    });
  }

  it("the API, the ingest and the CLI refuse to start without their secrets, naming the setting", async () => {
    const cases: [string, string[], Record<string, string>, RegExp][] = [
      ["services/api/src/main.ts", [], {}, /CF_JWT_SECRET/],
      ["services/api/src/main.ts", [], { CF_JWT_SECRET: "short" }, /CF_JWT_SECRET/],
      [
        "services/api/src/main.ts",
        [],
        { CF_JWT_SECRET: JWT_SECRET, CF_ADMIN_TOKENS: `ops:${JWT_SECRET}` },
        /adminTokens\.0\.secret.*distinct/,
      ],
      ["services/ingest/src/main.ts", [], {}, /CF_INGEST_TOKENS/],
      ["services/cli/src/main.ts", ["token", "sa"], {}, /CF_JWT_SECRET/],
    ];
    // Two at a time: each start loads the TypeScript sources, seconds on a busy machine.
    const results: { code: number | null; output: string }[] = [];
    for (let i = 0; i < cases.length; i += 2) {
      const pair = cases.slice(i, i + 2).map(([entry, args, env]) => start(entry, args, env));
      results.push(...(await Promise.all(pair)));
    }
    for (const [i, [entry, , env, named]] of cases.entries()) {
      const { code, output } = results[i]!;
      expect(code, `${entry} ${JSON.stringify(env)}: ${output}`).not.toBe(0);
      expect(code).not.toBeNull();
      expect(output, entry).toMatch(named);
      // The refusal names the setting, never a value.
      if (env.CF_JWT_SECRET !== undefined && env.CF_JWT_SECRET.length > 16) {
        expect(output).not.toContain(env.CF_JWT_SECRET);
      }
    }
    // In process too: one secret for two roles is refused before anything connects.
    await expect(
      fx.startApi({ ...apiOptions(), adminTokens: [{ name: "ops", secret: SERVICE }] }),
    ).rejects.toMatchObject({ name: ApiOptionError.name, field: "adminTokens.0.secret" });
  });

  it("no tracked file holds a secret value, a private key or a random token", () => {
    const git = (...args: string[]) =>
      execFileSync("git", args, { cwd: repo }).toString().split("\0").filter(Boolean);
    // What is committed, and what would be with the next `git add -A`.
    const files = git("ls-files", "-z", "--cached", "--others", "--exclude-standard");
    expect(files.length).toBeGreaterThan(100);
    // Where secrets are made is ignored.
    execFileSync("git", ["check-ignore", "-q", ".state/secrets.env"], { cwd: repo });
    const secretsFile = `${process.env.CF_STATE ?? `${repo}.state`}/secrets.env`;
    const secretValues = existsSync(secretsFile)
      ? readFileSync(secretsFile, "utf8")
          .split("\n")
          .flatMap((line) => line.replace(/^[A-Z_]+=/, "").split(/[,:]/))
          .filter((v) => v.length >= 16)
      : [];
    const entropy = (s: string) => {
      const counts = new Map<string, number>();
      for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
      return [...counts.values()].reduce((e, k) => e - (k / s.length) * Math.log2(k / s.length), 0);
    };
    const findings: string[] = [];
    for (const file of files) {
      const name = file.split("/").pop()!;
      if (
        /^(\.env(\..*)?|secrets\.env|id_(rsa|ed25519|ecdsa)|.*\.(pem|key|p12|pfx|jks))$/.test(name)
      ) {
        findings.push(`${file}: a secret file by its name`);
      }
      const path = `${repo}${file}`;
      if (!existsSync(path) || statSync(path).size > 5_000_000) continue;
      const text = readFileSync(path, "utf8");
      if (text.includes("\u0000")) continue; // binary
      if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) findings.push(`${file}: a private key`);
      if (/AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36}|xox[abpr]-[A-Za-z0-9-]{10,}/.test(text)) {
        findings.push(`${file}: a cloud or chat token`);
      }
      for (const value of secretValues) {
        if (text.includes(value)) findings.push(`${file}: a value of ${secretsFile}`);
      }
      for (const line of text.split("\n")) {
        // Lockfile integrity hashes are digests of public packages, not secrets.
        if (/"integrity":|sha(1|256|384|512)-/.test(line)) continue;
        // A stored member state in a codec test (`'[3,"…`): the engine's own encoding of test data.
        if (file.endsWith("codec.test.ts") && /^\s*'\[\d+,"/.test(line)) continue;
        for (const [token] of line.matchAll(/[A-Za-z0-9+/_=-]{32,}/g)) {
          if (!/\d/.test(token) || !/[A-Za-z]/.test(token)) continue;
          // Paths (`node_modules/@scope/pkg-1`) are lower case; random base64 is not.
          if (token.includes("/") && token === token.toLowerCase()) continue;
          // Test placeholders spell out a run (`...-0123456789abcdef`): visibly not random.
          if (/0123456789|abcdefgh/i.test(token)) continue;
          const hex = /^[0-9a-f]+$/i.test(token);
          if ((hex && entropy(token) > 3.3) || entropy(token) > 4.3) {
            findings.push(`${file}: a random-looking token ${token.slice(0, 8)}…`);
          }
        }
      }
    }
    expect(findings).toEqual([]);
  });
});
