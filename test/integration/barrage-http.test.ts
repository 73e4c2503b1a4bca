// Goal: a seeded barrage of bad requests to the ingest and to every API route changes nothing
// it should not. Every bad request (the route list is read from the OpenAPI document; a route
// the barrage does not know fails the test) is a 4xx with the `{ error: { code, field,
// message } }` body naming the field; the valid requests interleaved are answered 2xx, reach
// Kafka exactly once and are applied exactly by the consumer, none dead-lettered; both apps
// still answer at the end. The API's rate limits are raised for the barrage: any 429 here is a
// failure (api.test.ts tests the limiter). With barrage-kafka.test.ts, more than 10,000 bad
// inputs. Replay a run with CF_BARRAGE_SEED=<the seed printed at the start>.

import { randomBytes } from "node:crypto";
import type { Api } from "@creditflow/api";
import {
  type CreditCommandRecord,
  commandFromRecord,
  type UsageEventRecord,
  UsageInputSchema,
  usageEventFromRecord,
} from "@creditflow/contracts";
import { DAY_MS, type EngineInput, FEATURES, HOUR_MS, MAX_TIME_MS } from "@creditflow/engine";
import { buildIngest, type Ingest } from "@creditflow/ingest";
import { seededRandom } from "@creditflow/loadgen";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildMember, usage, writeMember } from "../../services/api/testing/harness.ts";
import { ledgerByUser } from "../../services/consumer/testing/harness.ts";
import { BAD_INPUTS_PER_HALF, useBarrageStack } from "../support/barrage-stack.ts";
import {
  type Chooser,
  chooser,
  jsonTypes,
  type MemberCredentials,
  memberCredentials,
  RAW,
  type Schema,
  serialize,
  wrongTypeValue,
} from "../support/generators.ts";

const b = useBarrageStack(import.meta.url);
const { codec, config, iso, readAll, topicSize, topics } = b;
const NOW_MS = b.nowMs;
const JWT_SECRET = randomBytes(32).toString("hex");
const SERVICE = `svc-${randomBytes(16).toString("hex")}`;
const ADMIN = `adm-${randomBytes(16).toString("hex")}`;
const INGEST = `ing-${randomBytes(16).toString("hex")}`;
/** API readers (written to Redis), admin-command members, ingest members. */
const R_USERS = ["ar0", "ar1", "ar2", "ar3"];
const A_USERS = Array.from({ length: 6 }, (_, i) => `au${i}`);
const H_USERS = Array.from({ length: 6 }, (_, i) => `hu${i}`);

let ingest: Ingest;
let api: Api;

beforeAll(async () => {
  ingest = await buildIngest({
    brokers: b.urls.kafkaBrokers,
    schemaRegistryUrl: b.urls.schemaRegistryUrl,
    rateCard: config.rateCard,
    topics,
    tokens: [{ name: "barrage-svc", secret: INGEST }],
    logger: false,
  });
  api = await b.fx.startApi({
    // No history database: transactions answer from Redis (api.test.ts covers ClickHouse).
    clickhouseDatabase: `${iso.database}_none`,
    jwtSecret: JWT_SECRET,
    serviceTokens: [{ name: "barrage-svc", secret: SERVICE }],
    adminTokens: [{ name: "barrage-ops", secret: ADMIN }],
    clock: b.fx.clock.now,
    limits: {
      memberRequestsPerWindow: 1_000_000,
      serviceRequestsPerWindow: 1_000_000,
      adminRequestsPerWindow: 1_000_000,
      anonymousRequestsPerWindow: 1_000_000,
    },
  });
});

afterAll(async () => {
  await ingest?.close();
});

interface HttpCase {
  target: "ingest" | "api";
  kind: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  /** The body as sent (already serialized). */
  payload?: string;
  /** A refusal: its status, and its code(s) and field where they are certain. */
  want?: { status: number; code?: string | string[]; field?: string };
  /** A valid request: its status and the ids it sends to Kafka. */
  valid?: { status: number; sent: string[] };
}

type Json = Record<string, unknown>;
type OpenApi = {
  paths: Record<
    string,
    Record<string, { requestBody?: { content: Record<string, { schema: Schema }> } }>
  >;
};

type Kind = "member" | "service" | "admin";

interface RouteDef {
  method: "GET" | "POST";
  path: (userId: string, grantId: string) => string;
  kinds: Kind[];
  params: ("userId" | "grantId")[];
  /** The member the request is about; a member credential is that member's. */
  user: () => string;
  body?: () => Json;
  /** Values the schema admits and the handler refuses: [mutation, field it names]. */
  semantic?: [(b: Json) => void, string][];
}

function apiRoutes(c: Chooser, nextId: () => number): Record<string, RouteDef> {
  const iso = (ms: number) => new Date(ms).toISOString();
  const future = () => iso(NOW_MS + c.int(1, 60) * DAY_MS);
  const inf = () => `${RAW}${c.pick(["1e400", "-1e400"])}`;
  const reader = (path: (u: string) => string, params: RouteDef["params"], kinds: Kind[]) =>
    ({ method: "GET", path, kinds, params, user: () => c.pick(R_USERS) }) satisfies RouteDef;
  const admin = (
    path: string,
    body: () => Json,
    semantic: [(b: Json) => void, string][] = [],
  ): RouteDef => ({
    method: "POST",
    path: (u, g) => `/v1/admin/members/${u}/${path.replace("{grantId}", g)}`,
    kinds: ["admin"],
    params: path.includes("{grantId}") ? ["userId", "grantId"] : ["userId"],
    user: () => c.pick(A_USERS),
    body: () => ({ commandId: `ab-${nextId()}`, ...body() }),
    semantic: [
      [(b) => (b.commandId = c.pick(["has space", "x".repeat(129), "é", ""])), "commandId"],
      [(b) => (b.issuedAt = c.pick(["yesterday", "2026-13-01T00:00:00Z", ""])), "issuedAt"],
      ...semantic,
    ],
  });
  const tiers = () => c.pick(["plus", "pro", "ultra"]);
  return {
    "GET /v1/me/balance": { ...reader(() => "/v1/me/balance", [], ["member"]), user: () => "ar0" },
    "GET /v1/me/transactions": {
      ...reader(() => "/v1/me/transactions", [], ["member"]),
      user: () => "ar0",
    },
    "GET /v1/members/{userId}/balance": reader(
      (u) => `/v1/members/${u}/balance`,
      ["userId"],
      ["member", "service", "admin"],
    ),
    "GET /v1/members/{userId}/transactions": reader(
      (u) => `/v1/members/${u}/transactions`,
      ["userId"],
      ["member", "service", "admin"],
    ),
    "POST /v1/admission": {
      method: "POST",
      path: () => "/v1/admission",
      kinds: ["service"],
      params: [],
      user: () => "ar0",
      body: () => ({ userId: c.pick([...R_USERS, "someone-new"]), feature: c.pick(FEATURES) }),
      semantic: [
        [(b) => (b.userId = c.pick(["a b", "", "x".repeat(129)])), "userId"],
        [(b) => (b.feature = c.pick(["fax", "CHAT", ""])), "feature"],
        [(b) => (b.taskKind = c.pick(["nope", "", "SWARM"])), "taskKind"],
      ],
    },
    "POST /v1/admin/members/{userId}/bonus-grants": admin(
      "bonus-grants",
      () => ({ amountMicros: c.int(1, 50) * 100_000, expiresAt: future(), campaign: "barrage" }),
      [
        [(b) => (b.amountMicros = c.pick([-5, 0, 1.5, 1e13 + 1, "5", inf()])), "amountMicros"],
        [
          (b) => (b.expiresAt = c.pick(["tomorrow", iso(NOW_MS - DAY_MS), "2026-13-01T00:00:00Z"])),
          "expiresAt",
        ],
        [(b) => (b.effectiveFrom = iso(NOW_MS + 90 * DAY_MS)), "expiresAt"],
        [(b) => (b.source = c.pick(["gift", ""])), "source"],
        [(b) => (b.recurrence = c.pick(["2h", "P7D", ""])), "recurrence"],
        [(b) => (b.priority = c.pick([-1, 1.5, 1_000_001])), "priority"],
        [(b) => (b.campaign = c.pick(["", "c".repeat(129)])), "campaign"],
      ],
    ),
    "POST /v1/admin/members/{userId}/subscription": admin(
      "subscription",
      () => ({ tierId: tiers(), billing: c.pick(["monthly", "annual"]) }),
      [
        [(b) => (b.tierId = c.pick(["gold", "free", "", "constructor"])), "tierId"],
        [(b) => (b.billing = c.pick(["weekly", ""])), "billing"],
      ],
    ),
    "POST /v1/admin/members/{userId}/subscription/change": admin(
      "subscription/change",
      () => ({ tierId: tiers() }),
      [[(b) => (b.tierId = c.pick(["gold", "", "t".repeat(65), "__proto__"])), "tierId"]],
    ),
    "POST /v1/admin/members/{userId}/subscription/cancel": admin("subscription/cancel", () => ({})),
    "POST /v1/admin/members/{userId}/grants/{grantId}/revoke": admin(
      "grants/{grantId}/revoke",
      () => ({}),
    ),
    "POST /v1/admin/members/{userId}/adjustments": admin(
      "adjustments",
      () =>
        c.random() < 0.5
          ? { amountMicros: c.int(1, 9) * 100_000, expiresAt: future(), reason: "barrage" }
          : { amountMicros: -c.int(1, 9) * 1_000, reason: "barrage" },
      [
        [(b) => (b.amountMicros = c.pick([0, 1.5, 1e13 + 1, -1e13 - 1, inf()])), "amountMicros"],
        [
          (b) =>
            Object.assign(b, {
              amountMicros: 5,
              expiresAt: c.pick([undefined, null, iso(NOW_MS - 1)]),
            }),
          "expiresAt",
        ],
        [(b) => (b.reason = c.pick(["", "r".repeat(501)])), "reason"],
      ],
    ),
    "POST /v1/admin/members/{userId}/legacy-migration": admin(
      "legacy-migration",
      () => ({ unusedUses: { [c.pick(["ppt", "agent", "docs"])]: c.int(0, 20) } }),
      [
        [(b) => (b.unusedUses = {}), "unusedUses"],
        [(b) => (b.unusedUses = { fax: 3 }), "unusedUses.fax"],
        [
          (b) => (b.unusedUses = { ppt: c.pick([-1, 1.5, "3", null, 1_000_001]) }),
          "unusedUses.ppt",
        ],
        [(b) => (b.unusedUses = { constructor: 1 }), "unusedUses.constructor"],
        [(b) => (b.unusedUses = { toString: 2 }), "unusedUses.toString"],
      ],
    ),
  };
}

function httpPlan(c: Chooser, creds: MemberCredentials, openapi: OpenApi): HttpCase[] {
  let n = 0;
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
  const json = { "content-type": "application/json" };
  const credOf = (k: Kind, user = "ar0") =>
    bearer(
      k === "admin" ? ADMIN : k === "service" ? SERVICE : creds.members[R_USERS.indexOf(user)]!,
    );
  const routes = apiRoutes(c, () => n);

  // Every documented route has a place in the barrage; a new route fails here until it does.
  const documented = Object.entries(openapi.paths).flatMap(([p, ms]) =>
    Object.keys(ms).map((m) => `${m.toUpperCase()} ${p}`),
  );
  expect(documented.sort()).toEqual(Object.keys(routes).sort());
  const bodySchema = (key: string): Schema => {
    const [method, path] = key.split(" ") as [string, string];
    return openapi.paths[path]![method.toLowerCase()]!.requestBody!.content["application/json"]!
      .schema;
  };

  /** One API request, valid or with one thing wrong; null when the kind does not apply. */
  function apiCase(key: string): HttpCase | null {
    const r = routes[key]!;
    const user = r.user();
    const url = r.path(user, `g-${n}`);
    const own = c.pick(r.kinds);
    const auth = credOf(own, user);
    const body = r.body?.();
    const payload = body === undefined ? undefined : serialize(body);
    const headers = { ...auth, ...(r.method === "POST" ? json : {}) };
    const req = { target: "api" as const, method: r.method, url, headers, payload };
    const bad = (kind: string, want: HttpCase["want"], over: Partial<HttpCase> = {}) =>
      ({ ...req, kind: `api.${kind}`, want, ...over }) satisfies HttpCase;
    const withBody = (kind: string, text: string, want: HttpCase["want"]) =>
      bad(kind, want, { headers: { ...auth, ...json }, payload: text });
    const invalid = (field: string) => ({ status: 400, code: "invalid_request", field });
    const unauthorized = (code: string | string[]) => ({
      status: 401,
      code,
      field: "authorization",
    });
    const forbidden = { status: 403, code: "forbidden", field: "authorization" };
    const props = body === undefined ? {} : (bodySchema(key).properties ?? {});
    const table: Record<string, { w: number; make: () => HttpCase | null }> = {
      valid: {
        w: 6,
        make: () => {
          const commandId = body?.commandId === undefined ? null : `av-${n}`;
          if (commandId !== null) body!.commandId = commandId;
          const valid = {
            status: commandId === null ? 200 : 202,
            sent: commandId === null ? [] : [commandId],
          };
          return { ...req, kind: "api.valid", payload: body && serialize(body), valid };
        },
      },
      auth_missing: {
        w: 3,
        make: () => bad("auth_missing", unauthorized("unauthorized"), { headers: { ...json } }),
      },
      auth_scheme: {
        w: 3,
        make: () => {
          const value = c.pick([
            ...["Basic YWRtaW46YWRtaW4=", "Token abc", "Bearer", "Bearer ", "Bearer\t\t"],
            ...[`bearer ${ADMIN} extra`, ADMIN, `${ADMIN} Bearer`],
          ]);
          return bad("auth_scheme", unauthorized("unauthorized"), {
            headers: { ...json, authorization: value },
          });
        },
      },
      auth_garbage: {
        w: 4,
        make: () => {
          const token = c.pick([
            ...[c.text(c.int(1, 60)), `${ADMIN}x`, SERVICE.slice(0, -1), INGEST],
            ...[`a.b.${c.text(10).replace(/\W/g, "")}`, "x".repeat(8_000)],
          ]);
          return bad("auth_garbage", unauthorized(["unauthorized", "invalid_token"]), {
            headers: { ...json, ...bearer(token) },
          });
        },
      },
      auth_expired: {
        w: 2,
        make: () =>
          bad("auth_expired", unauthorized("token_expired"), {
            headers: { ...json, ...bearer(creds.expired) },
          }),
      },
      auth_invalid: {
        w: 8,
        make: () =>
          bad("auth_invalid", unauthorized("invalid_token"), {
            headers: { ...json, ...bearer(c.pick(creds.invalid)) },
          }),
      },
      auth_wrong_kind: {
        w: 5,
        make: () => {
          const others = (["member", "service", "admin"] as const).filter(
            (k) => !r.kinds.includes(k),
          );
          if (others.length === 0) return null;
          return bad("auth_wrong_kind", forbidden, {
            headers: { ...json, ...credOf(c.pick(others)) },
          });
        },
      },
      auth_pretender: {
        w: 2,
        make: () =>
          r.kinds.includes("member")
            ? null
            : bad("auth_pretender", forbidden, {
                headers: { ...json, ...bearer(c.pick(creds.pretenders)) },
              }),
      },
      wrong_method: {
        w: 2,
        make: () => {
          const method = c.pick(["PUT", "DELETE", "PATCH", r.method === "GET" ? "POST" : "GET"]);
          const want = { status: 404, code: "not_found", field: "" };
          return bad("wrong_method", want, {
            method,
            headers: { ...auth, ...json },
            payload: payload ?? "{}",
          });
        },
      },
      unknown_path: {
        w: 1,
        make: () =>
          bad(
            "unknown_path",
            { status: 404, code: "not_found", field: "" },
            {
              url: `${url}/${c.pick(["x", "..", "%00", "balance"])}`,
            },
          ),
      },
    };
    if (r.params.length > 0) {
      // With an admin or service credential: a member's would be asked about its own id first.
      const who = credOf(r.kinds.includes("admin") ? "admin" : "service");
      const at = (param: string, bad: string) =>
        param === "userId" ? r.path(bad, `g-${n}`) : r.path(user, bad);
      table.bad_param = {
        w: 5,
        make: () => {
          const param = c.pick(r.params);
          const value =
            param === "userId"
              ? c.pick([
                  "a%20b",
                  "x".repeat(129),
                  "%C3%BC",
                  "a%2Fb",
                  "%00",
                  "a%3Bb",
                  "y".repeat(c.int(129, 512)),
                ])
              : "g".repeat(c.int(257, 512));
          return bad("bad_param", invalid(param), {
            url: at(param, value),
            headers: { ...headers, ...who },
          });
        },
      };
      // What the router cannot read at all is refused before any schema, naming the path.
      table.bad_path = {
        w: 1,
        make: () => {
          const value = c.pick(["%E0%A4%A", "%", "%zz", "x".repeat(c.int(513, 3_000))]);
          const url = at(c.pick(r.params), value);
          return bad("bad_path", invalid("path"), { url, headers: { ...headers, ...who } });
        },
      };
    }
    if (r.kinds.includes("member") && r.params.includes("userId")) {
      table.other_member = {
        w: 5,
        make: () => {
          const other = c.pick(["ar1", "ar2", "ar3", "ghost", "au0", "barrage-ops"]);
          const want = { status: 403, code: "forbidden", field: "userId" };
          return bad("other_member", want, {
            url: r.path(other, ""),
            headers: credOf("member", "ar0"),
          });
        },
      };
    }
    if (body !== undefined) {
      const notJson = { status: 400, code: "invalid_json", field: "body" };
      Object.assign(table, {
        malformed_json: {
          w: 5,
          make: () => {
            const text = c.pick([
              ...[
                payload!.slice(0, c.int(1, payload!.length - 1)),
                `${payload},`,
                payload!.replace(":", ""),
              ],
              ...["{'a': 1}", "NaN", "[1,]", '{"a":1}}', "\u0000", '{"commandId": undefined}'],
            ]);
            return withBody("malformed_json", text, notJson);
          },
        },
        empty_body: { w: 2, make: () => withBody("empty_body", "", notJson) },
        wrong_content_type: {
          w: 4,
          make: () => {
            const type = c.pick([
              ...[
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
              ],
              ...[
                "application/xml",
                "application/octet-stream",
                "application/json-patch+json",
                "text/json",
              ],
            ]);
            const want = { status: 415, code: "unsupported_media_type" };
            return bad("wrong_content_type", want, { headers: { ...auth, "content-type": type } });
          },
        },
        oversized_body: {
          w: 1,
          make: () =>
            withBody("oversized_body", serialize({ ...body, pad: "p".repeat(70 * 1024) }), {
              status: 413,
              code: "body_too_large",
            }),
        },
        not_object: {
          w: 3,
          make: () =>
            withBody(
              "not_object",
              c.pick(["null", "[]", "[{}]", "42", '"text"', "true"]),
              invalid("body"),
            ),
        },
        missing_field: {
          w: 5,
          make: () => {
            const field = c.pick(bodySchema(key).required ?? []);
            const b = { ...body };
            delete b[field];
            return withBody("missing_field", serialize(b), invalid(field));
          },
        },
        unknown_field: {
          w: 5,
          make: () => {
            const field = c.pick(["extra", "userId", "type", "__proto__x", "amount", "isAdmin"]);
            if (field in props) return null;
            return withBody("unknown_field", serialize({ ...body, [field]: 1 }), invalid(field));
          },
        },
        wrong_type: {
          w: 10,
          make: () => {
            const field = c.pick(Object.keys(props));
            const b = { ...body, [field]: wrongTypeValue(c, props[field]!) };
            return withBody("wrong_type", serialize(b), invalid(field));
          },
        },
        huge_string: {
          w: 3,
          make: () => {
            const strings = Object.keys(props).filter((f) => jsonTypes(props[f]!).has("string"));
            if (strings.length === 0) return null;
            const field = c.pick(strings);
            const b = { ...body, [field]: "h".repeat(c.int(1_000, 50_000)) };
            return withBody("huge_string", serialize(b), invalid(field));
          },
        },
        semantic: {
          w: 12,
          make: () => {
            if (r.semantic === undefined) return null;
            const [mutate, field] = c.pick(r.semantic);
            const b = { ...body };
            mutate(b);
            const route = key.split("/").pop();
            return withBody(`semantic.${route}.${field}`, serialize(b), invalid(field));
          },
        },
        bad_auth_and_body: {
          w: 2,
          make: () =>
            bad("bad_auth_and_body", unauthorized("invalid_token"), {
              headers: { ...json, ...bearer(c.pick(creds.invalid)) },
              payload: c.pick(["{", "[]", "null"]),
            }),
        },
      });
    }
    return table[c.weighted(table)]!.make();
  }

  // ---- ingest
  const usageSchema = UsageInputSchema as unknown as Schema;
  const validEvent = (id: string): Json => {
    const feature = c.pick(FEATURES);
    const minutesAgo = NOW_MS - c.int(0, 60_000);
    const e: Json = {
      eventId: id,
      userId: c.pick(H_USERS),
      taskId: `t-${c.int(0, 9)}`,
      feature,
      model: c.pick(Object.keys(config.rateCard.features[feature].models)),
      inputTokens: c.int(0, 3_000),
      outputTokens: c.int(0, 500),
      occurredAt: c.random() < 0.5 ? minutesAgo : new Date(minutesAgo).toISOString(),
    };
    if (feature === "agent" && c.random() < 0.3) e.taskKind = "docs";
    if (c.random() < 0.2) e.cachedInputTokens = c.int(0, 100);
    if (c.random() < 0.2) e.service = "named-by-event";
    return e;
  };
  const tokens = () => c.pick(["inputTokens", "outputTokens", "cachedInputTokens"]);
  /** One thing wrong with an event: [fault, mutation returning the field it names]. */
  const eventFaults: Record<string, { w: number; make: (e: Json) => string }> = {
    missing_field: {
      w: 5,
      make: (e) => {
        const f = c.pick(usageSchema.required!);
        delete e[f];
        return f;
      },
    },
    unknown_field: {
      w: 4,
      make: (e) => {
        const f = c.pick(["extra", "cost", "user_id", "credits"]);
        e[f] = 1;
        return f;
      },
    },
    wrong_type: {
      w: 10,
      make: (e) => {
        const f = c.pick(Object.keys(usageSchema.properties!));
        e[f] = wrongTypeValue(c, usageSchema.properties![f]!);
        return f;
      },
    },
    negative_tokens: {
      w: 4,
      make: (e) => {
        const f = tokens();
        e[f] = -c.int(1, 1e9);
        return f;
      },
    },
    float_tokens: {
      w: 3,
      make: (e) => {
        const f = tokens();
        e[f] = c.int(0, 1000) + 0.25;
        return f;
      },
    },
    too_many_tokens: {
      w: 3,
      make: (e) => {
        const f = tokens();
        e[f] = c.int(1e8 + 1, 2 ** 52);
        return f;
      },
    },
    infinite_tokens: {
      w: 2,
      make: (e) => {
        const f = tokens();
        e[f] = `${RAW}${c.pick(["1e400", "-1e400"])}`;
        return f;
      },
    },
    bad_id: {
      w: 4,
      make: (e) => {
        const f = c.pick(["eventId", "userId", "taskId"]);
        e[f] = c.pick(["has space", "", "é", "x".repeat(129), "a/b", "<script>"]);
        return f;
      },
    },
    huge_string: {
      w: 4,
      make: (e) => {
        const f = c.pick([
          "eventId",
          "userId",
          "taskId",
          "feature",
          "model",
          "service",
          "taskKind",
        ]);
        e[f] = "h".repeat(c.int(1_000, 100_000));
        return f;
      },
    },
    unknown_feature: {
      w: 3,
      make: (e) => {
        e.feature = c.pick(["teleport", "", "CHAT", "constructor", "__proto__"]);
        return "feature";
      },
    },
    unknown_model: {
      w: 3,
      make: (e) =>
        Object.assign(e, { feature: "chat", model: c.pick(["gpt-0", "image-1", "toString"]) }) &&
        "model",
    },
    task_kind_mismatch: {
      w: 3,
      make: (e) =>
        Object.assign(
          e,
          c.random() < 0.5
            ? { feature: "chat", model: "kimi-k2", taskKind: "docs" }
            : { feature: "agent", model: "kimi-k2", taskKind: c.pick(["nope", "", "DOCS"]) },
        ) && "taskKind",
    },
    bad_time: {
      w: 5,
      make: (e) => {
        e.occurredAt = c.pick<unknown>([
          ...["yesterday", "2026-13-01T00:00:00Z", "2026-11-25 12:00:00", "", "x".repeat(41)],
          ...["0000-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "9999-12-31T23:59:59Z"],
          ...[-1, 1.5, MAX_TIME_MS + 1, Number.MAX_SAFE_INTEGER],
        ]);
        return "occurredAt";
      },
    },
  };

  function ingestCase(): HttpCase {
    const auth = bearer(INGEST);
    const req = {
      target: "ingest" as const,
      method: "POST",
      url: "/v1/usage",
      headers: { ...auth, ...json },
    };
    const bad = (
      kind: string,
      payload: string,
      want: HttpCase["want"],
      over: Partial<HttpCase> = {},
    ) => ({ ...req, kind: `ingest.${kind}`, payload, want, ...over }) satisfies HttpCase;
    const invalid = (field: string) => ({ status: 400, code: "invalid_input", field });
    const one = () => serialize(validEvent(`hb-${n}`));
    const batch = (size: number) =>
      Array.from({ length: size }, (_, i) => validEvent(`hb-${n}-${i}`));
    const table: Record<string, { w: number; make: () => HttpCase }> = {
      valid: {
        w: 6,
        make: () => {
          const events = Array.from({ length: c.random() < 0.5 ? 1 : c.int(1, 20) }, (_, i) =>
            validEvent(`hv-${n}-${i}`),
          );
          const body = events.length === 1 && c.random() < 0.5 ? events[0] : { events };
          const valid = { status: 202, sent: events.map((e) => String(e.eventId)) };
          return { ...req, kind: "ingest.valid", payload: serialize(body), valid };
        },
      },
      auth: {
        w: 8,
        make: () => {
          const value = c.pick([
            ...[undefined, "Basic x", `Bearer ${INGEST}x`, `Bearer ${ADMIN}`, `Bearer ${SERVICE}`],
            ...[`Bearer ${creds.members[0]}`, `Bearer ${c.text(30)}`, INGEST, "Bearer"],
          ]);
          const headers: Record<string, string> = { ...json };
          if (value !== undefined) headers.authorization = value;
          return bad(
            "auth",
            one(),
            { status: 401, code: "unauthorized", field: "authorization" },
            { headers },
          );
        },
      },
      wrong_content_type: {
        w: 4,
        make: () => {
          const type = c.pick([
            ...["text/plain", "application/x-www-form-urlencoded", "application/xml"],
            ...["application/octet-stream", "text/json"],
          ]);
          const want = { status: 415, code: "unsupported_media_type" };
          return bad("wrong_content_type", one(), want, {
            headers: { ...auth, "content-type": type },
          });
        },
      },
      malformed_json: {
        w: 5,
        make: () => {
          const text = one();
          const malformed = c.pick([
            ...[text.slice(0, c.int(1, text.length - 1)), `${text},`, "{'a': 1}", "NaN", "[1,]"],
            ...[
              `${text}}`,
              "\u0000",
              '{"__proto__": {"a": 1}}',
              '{"constructor": {"prototype": {}}}',
            ],
          ]);
          // The ingest names the whole body with an empty field (its errors.ts).
          return bad("malformed_json", malformed, { status: 400, code: "invalid_json", field: "" });
        },
      },
      empty_body: {
        w: 1,
        make: () => bad("empty_body", "", { status: 400, code: "invalid_json", field: "" }),
      },
      oversized_body: {
        w: 0.3,
        make: () =>
          bad(
            "oversized_body",
            serialize({ ...validEvent(`hb-${n}`), taskId: "x".repeat(1_100_000) }),
            {
              status: 413,
              code: "body_too_large",
            },
          ),
      },
      batch_too_large: {
        w: 0.3,
        make: () =>
          bad("batch_too_large", serialize({ events: batch(1_001) }), {
            status: 413,
            code: "batch_too_large",
            field: "events",
          }),
      },
      empty_events: {
        w: 1,
        make: () => bad("empty_events", serialize({ events: [] }), invalid("events")),
      },
      events_not_array: {
        w: 1,
        make: () =>
          bad(
            "events_not_array",
            serialize({ events: c.pick([null, {}, validEvent("x"), "x", 3]) }),
            invalid("events"),
          ),
      },
      extra_top_level: {
        w: 2,
        make: () => {
          const f = c.pick(["extra", "eventId", "service", "batchId"]);
          return bad("extra_top_level", serialize({ events: batch(1), [f]: "x" }), invalid(f));
        },
      },
      not_object: {
        w: 2,
        make: () =>
          bad(
            "not_object",
            c.pick(["null", "[]", `[${one()}]`, "42", '"text"', "true"]),
            invalid(""),
          ),
      },
      event_fault: {
        w: 30,
        make: () => {
          const e = validEvent(`hb-${n}`);
          const fault = c.weighted(eventFaults);
          const field = eventFaults[fault]!.make(e);
          return bad(`event.${fault}`, serialize(e), invalid(field));
        },
      },
      batch_event_fault: {
        w: 20,
        make: () => {
          const events = batch(c.int(2, 30));
          const at = c.int(0, events.length - 1);
          if (c.random() < 0.1) {
            events[at] = c.pick<unknown>([null, 3, "x", [], true]) as Json;
            return bad("batch.not_object", serialize({ events }), invalid(`events.${at}`));
          }
          const fault = c.weighted(eventFaults);
          const field = eventFaults[fault]!.make(events[at]!);
          return bad(`batch.${fault}`, serialize({ events }), invalid(`events.${at}.${field}`));
        },
      },
      unknown_path: {
        w: 1,
        make: () =>
          bad(
            "unknown_path",
            one(),
            { status: 404, code: "not_found" },
            {
              url: c.pick(["/v1/usage/x", "/v2/usage", "/v1/usages", "/", "/v1/us%zzage"]),
            },
          ),
      },
      wrong_method: {
        w: 1,
        make: () =>
          bad(
            "wrong_method",
            one(),
            { status: 404, code: "not_found" },
            {
              method: c.pick(["GET", "PUT", "DELETE", "PATCH"]),
            },
          ),
      },
    };
    return table[c.weighted(table)]!.make();
  }

  const cases: HttpCase[] = [];
  const keys = Object.keys(routes);
  while (cases.length < 6_600) {
    const k = c.random() < 0.4 ? ingestCase() : apiCase(c.pick(keys));
    if (k !== null) cases.push(k);
    n++;
  }
  return cases;
}

/** Runs the cases with `concurrency` in flight; returns what went wrong, one line per case. */
async function runCases(cases: HttpCase[], concurrency: number) {
  const problems: string[] = [];
  const accepted = { ingest: new Set<string>(), api: new Set<string>() };
  let next = 0;
  async function worker() {
    while (next < cases.length) {
      const k = cases[next++]!;
      const app = k.target === "ingest" ? ingest.app : api.app;
      const r = await app.inject({
        method: k.method as "GET",
        url: k.url,
        headers: k.headers,
        ...(k.payload === undefined ? {} : { payload: k.payload }),
      });
      const where = `${k.kind} ${k.method} ${k.url.slice(0, 80)} ${(k.payload ?? "").slice(0, 100)}`;
      let body: Json;
      try {
        body = r.json();
      } catch {
        problems.push(`${where}: ${r.statusCode}, body not JSON: ${r.body.slice(0, 120)}`);
        continue;
      }
      if (k.valid !== undefined) {
        if (r.statusCode !== k.valid.status) {
          problems.push(`${where}: valid request answered ${r.statusCode} ${r.body.slice(0, 200)}`);
        } else {
          if (k.target === "ingest") expect(body.accepted).toEqual(k.valid.sent);
          for (const id of k.valid.sent) accepted[k.target].add(id);
        }
        continue;
      }
      const want = k.want!;
      const e = body.error as { code?: unknown; field?: unknown; message?: unknown } | undefined;
      const ok =
        r.statusCode === want.status &&
        Object.keys(body).length === 1 &&
        typeof e?.message === "string" &&
        e.message.length > 0 &&
        typeof e.field === "string" &&
        (want.code === undefined || [want.code].flat().includes(String(e.code))) &&
        (want.field === undefined || e.field === want.field);
      if (!ok)
        problems.push(
          `${where}: got ${r.statusCode} ${r.body.slice(0, 200)}; want ${JSON.stringify(want)}`,
        );
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { problems, accepted };
}

describe("bad-input barrage over HTTP", () => {
  it("refuses every bad request to the ingest and the API with a 4xx naming the field; the valid ones reach Kafka once", async () => {
    // Members the API reads, written as the consumer writes them.
    for (const user of R_USERS) {
      const m = buildMember(config, user, NOW_MS - 3 * DAY_MS, [
        usage(user, `${user}-e0`, `${user}-t0`, "chat", "kimi-k2", 20_000, NOW_MS - HOUR_MS),
      ]);
      await writeMember(b.redis, iso.keyPrefix, m.state, 3);
    }
    const openapi = (await api.app.inject({ method: "GET", url: "/docs/json" })).json() as OpenApi;
    const creds = await memberCredentials({
      secret: JWT_SECRET,
      members: R_USERS,
      adminName: "barrage-ops",
      serviceName: "barrage-svc",
    });
    const cases = httpPlan(chooser(seededRandom(b.seed)), creds, openapi);
    for (const k of cases)
      b.tally(`http.${k.kind}${k.want === undefined ? "" : `.${k.want.status}`}`);
    const bad = cases.filter((k) => k.want !== undefined);

    const started = performance.now();
    const { problems, accepted } = await runCases(cases, 16);
    const ms = Math.round(performance.now() - started);
    console.log(`HTTP barrage: ${cases.length} requests (${bad.length} bad) in ${ms} ms`);
    expect(problems.slice(0, 15)).toEqual([]);
    expect(bad.length, "bad requests sent").toBeGreaterThanOrEqual(BAD_INPUTS_PER_HALF);

    // Both apps still answer, and a last valid request to each is accepted.
    expect((await ingest.app.inject({ url: "/healthz" })).statusCode).toBe(200);
    expect((await api.app.inject({ url: "/healthz" })).statusCode).toBe(200);
    const last = await ingest.app.inject({
      method: "POST",
      url: "/v1/usage",
      headers: { authorization: `Bearer ${INGEST}` },
      payload: {
        ...{ eventId: "hv-last", userId: "hu0", taskId: "t-last", feature: "chat" },
        ...{ model: "kimi-k2", inputTokens: 10, outputTokens: 1, occurredAt: NOW_MS },
      },
    });
    expect(last.statusCode).toBe(202);
    accepted.ingest.add("hv-last");
    const expiresAt = new Date(NOW_MS + DAY_MS).toISOString();
    const lastGrant = await api.app.inject({
      method: "POST",
      url: "/v1/admin/members/au0/bonus-grants",
      headers: { authorization: `Bearer ${ADMIN}` },
      payload: { commandId: "av-last", amountMicros: 1_000_000, expiresAt },
    });
    expect(lastGrant.statusCode).toBe(202);
    accepted.api.add("av-last");
    // The longest id the contracts allow is readable (the router once stopped at 100 characters).
    const longest = await api.app.inject({
      url: `/v1/members/${"l".repeat(128)}/balance`,
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect({ status: longest.statusCode, error: longest.json().error }).toMatchObject({
      status: 404,
      error: { code: "member_not_found", field: "userId" },
    });

    // Kafka holds each accepted id once, and nothing else (the file's topics are HTTP's only).
    type FromHttp = { id: string; key: string | null; input: EngineInput; offset: number };
    const fromHttp = async (topic: string, kind: "usage" | "command") => {
      const out: FromHttp[] = [];
      for (const r of await readAll(topic)) {
        const d = await codec.decode(kind, r.value);
        if (!d.ok) throw new Error(`an HTTP record does not decode: ${d.detail}`);
        const input =
          kind === "usage"
            ? usageEventFromRecord(d.value as UsageEventRecord)
            : commandFromRecord(d.value as CreditCommandRecord);
        out.push({ id: input.id, key: r.key, input, offset: Number(r.offset) });
      }
      return out;
    };
    const httpUsage = await fromHttp(topics.usage, "usage");
    const httpCommands = await fromHttp(topics.commands, "command");
    expect(httpUsage.map((r) => r.id).sort()).toEqual([...accepted.ingest].sort());
    expect(httpCommands.map((r) => r.id).sort()).toEqual([...accepted.api].sort());

    // The consumer applies them exactly and dead-letters none of them.
    await b.drained([topics.usage, topics.commands]);
    expect(await topicSize(topics.deadLetters)).toBe(0);
    const ledger = await ledgerByUser(codec, await readAll(topics.ledger));
    const byUser = new Map<string, FromHttp[]>();
    for (const r of [...httpUsage, ...httpCommands]) {
      expect(r.key).toBe(r.input.userId);
      byUser.set(r.input.userId, [...(byUser.get(r.input.userId) ?? []), r]);
    }
    expect([...byUser.keys()]).toEqual(expect.arrayContaining(["au0", "hu0"]));
    for (const [user, list] of byUser) {
      // Each member here has records on one topic, so on one partition: offset order is theirs.
      list.sort((a, b) => a.offset - b.offset);
      await b.expectAsEngine(
        user,
        list.map((r) => r.input),
        ledger,
      );
    }
  });
});
