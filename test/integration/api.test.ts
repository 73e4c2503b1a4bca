// Goal: the balance API against the real stack answers what a member, a feature service and an
// admin would notice. Members read their own balance (percentage, bonus expiries, next refresh,
// windows, freshness) and last 10 transactions (from ClickHouse, or from Redis when history lags
// or fails); admission pauses with the reason, the retry time and the upgrade; admin commands are
// answered 202 once on the commands topic with their id, a changed repeat is 409; every refusal
// (401, 403, 400 naming the field, 404, 409, 429) has the `{ error: { code, field, message } }`
// body; the OpenAPI document lists every route; the page and its assets are served.
import { type Api, formatCredits } from "@creditflow/api";
import type { TopicNames } from "@creditflow/contracts";
import { balanceView, DAY_MS, HOUR_MS } from "@creditflow/engine";
import { migrate } from "@creditflow/history";
import { beforeAll, describe, expect, it } from "vitest";
import {
  buildMember,
  historyRows,
  memberToken,
  usage,
  writeMember,
} from "../../services/api/testing/harness.ts";
import { ADMIN_TOKEN, fixture } from "../support/fixture.ts";
import { bonusGrant, spentMember, taskUsage } from "../support/inputs.ts";
import { expectRefusal } from "../support/refusals.ts";

const fx = fixture(import.meta.url, { partitions: 3, nowMs: Date.now() });
const { config, iso } = fx;
const NOW_MS = fx.clock.nowMs;
const ADMIN = ADMIN_TOKEN;
const SERVICE = "service-secret-0123456789";

let topics: TopicNames;
let api: Api;
/** A second instance: tight rate limits, and a ClickHouse database that does not exist. */
let strict: Api;

const baseOptions = () => ({
  serviceTokens: [{ name: "agent-svc", secret: SERVICE }],
  clock: fx.clock.now,
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const admin = bearer(ADMIN);
const service = bearer(SERVICE);

/** ann: a 10-credit trial bonus and 12 tasks over three days, two inside the running 5h window. */
const annTrial = bonusGrant({
  id: "ann-trial",
  userId: "ann",
  source: "trial",
  amountMicros: 10_000_000,
  atMs: NOW_MS - 2 * DAY_MS,
  expiresAtMs: NOW_MS + 6 * DAY_MS,
});
const annUsage = taskUsage("ann", 12, (i) => ({
  feature: i % 2 === 0 ? "chat" : "agent",
  inputTokens: 50_000 + i * 1000,
  atMs: NOW_MS - (12 - i) * 5 * HOUR_MS + (i >= 10 ? 4 * HOUR_MS : 0),
}));
const ann = buildMember(config, "ann", NOW_MS - 10 * DAY_MS, [annTrial, ...annUsage]);
/** zed: spent everything eight days ago (windows over): out of credits until the refresh. */
const zed = spentMember(config, "zed", NOW_MS);
/** wyn: 30 credits an hour ago, over the free 5-hour cap of 25. */
const wyn = buildMember(config, "wyn", NOW_MS - 9 * DAY_MS, [
  usage("wyn", "wyn-e0", "wyn-t0", "code", "kimi-k2", 1_700_000, NOW_MS - HOUR_MS),
]);
/** lag: three tasks; ClickHouse has only the first two. */
const lagInputs = [0, 1, 2].map((i) =>
  usage("lag", `lag-e${i}`, `lag-t${i}`, "chat", "kimi-k2", 10_000, NOW_MS - (3 - i) * HOUR_MS),
);
const lag = buildMember(config, "lag", NOW_MS - DAY_MS, lagInputs);

beforeAll(async () => {
  topics = await fx.topics();
  await migrate(fx.urls.clickhouseUrl, iso.database);
  for (const m of [ann, zed, wyn, lag]) await writeMember(fx.redis, iso.keyPrefix, m.state, 7);
  const lagHistory = lag.entries.filter((e) => e.taskId !== "lag-t2");
  await fx.clickhouse.insert({
    table: `${iso.database}.ledger_entries`,
    format: "JSONEachRow",
    values: historyRows([...ann.entries, ...lagHistory]),
  });
  api = await fx.startApi(baseOptions());
  strict = await fx.startApi({
    ...baseOptions(),
    clickhouseDatabase: `${iso.database}_missing`,
    limits: { memberRequestsPerWindow: 3, anonymousRequestsPerWindow: 3, rateWindowMs: 60_000 },
  });
});

async function get(path: string, headers: Record<string, string> = {}, app = api) {
  const r = await app.app.inject({ method: "GET", url: path, headers });
  return { status: r.statusCode, body: r.json(), headers: r.headers };
}

async function post(path: string, payload: unknown, headers: Record<string, string>, app = api) {
  const r = await app.app.inject({
    method: "POST",
    url: path,
    payload: payload as object,
    headers,
  });
  return { status: r.statusCode, body: r.json(), headers: r.headers };
}

describe("GET /v1/me/balance", () => {
  it("shows the member's balance as the engine computes it, with times in ISO-8601", async () => {
    const r = await get("/v1/me/balance", bearer(await memberToken("ann")));
    expect(r.status).toBe(200);
    const view = balanceView(ann.state, { config, nowMs: NOW_MS });
    expect(r.body).toMatchObject({
      userId: "ann",
      tier: { id: "free", name: "Free", billing: "free" },
      percent: view.percent,
      remainingMicros: view.remainingMicros,
      capacityMicros: 110_000_000,
      remainingByClass: {
        bonusMicros: view.remainingByClass.bonusMicros,
        subscriptionMicros: view.remainingByClass.subscriptionMicros,
      },
      lowCredit: false,
      lowCreditThresholdPercent: 10,
      nextRefreshAt: new Date(view.nextRefreshAtMs!).toISOString(),
      paused: null,
      asOf: {
        stateAt: new Date(ann.state.clockMs).toISOString(),
        readAt: new Date(NOW_MS).toISOString(),
        version: 7,
      },
    });
    expect(view.percent).toBeGreaterThan(50);
    expect(view.percent).toBeLessThan(100);
    // The trial, partly spent, shows with its expiry; credits are exact decimal strings.
    const trialLeft = view.bonusGrants[0]!.remainingMicros;
    expect(trialLeft).toBeLessThan(10_000_000);
    expect(r.body.bonusGrants).toEqual([
      {
        grantId: "ann-trial",
        source: "trial",
        amountMicros: 10_000_000,
        amountCredits: "10",
        remainingMicros: trialLeft,
        remainingCredits: formatCredits(trialLeft),
        expiresAt: new Date(NOW_MS + 6 * DAY_MS).toISOString(),
      },
    ]);
    expect(r.body.remainingCredits).toBe(formatCredits(view.remainingMicros));
    expect(formatCredits(98_012_000)).toBe("98.012");
    expect(formatCredits(766_000)).toBe("0.766");
    expect(formatCredits(5_000_000)).toBe("5");
    // Two tasks inside the running 5-hour window; its reset is 5 h after the first of them.
    expect(r.body.windows.fiveHour).toMatchObject({
      capMicros: 25_000_000,
      usedMicros: view.window5h!.usedMicros,
      resetsAt: new Date(view.window5h!.resetAtMs!).toISOString(),
    });
    expect(r.body.windows.fiveHour.usedMicros).toBeGreaterThan(0);
    expect(r.body.windows.sevenDay.capMicros).toBe(60_000_000);
  });

  it("shows a drained member the paused notice with the refresh time and the upgrade", async () => {
    const r = await get("/v1/me/balance", bearer(await memberToken("zed")));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ percent: 0, remainingMicros: 0, lowCredit: true });
    expect(r.body.paused).toMatchObject({
      reason: "out_of_credits",
      retryAt: r.body.nextRefreshAt,
      upgrade: { tierId: "plus", tierName: "Plus" },
    });
  });

  it("answers 404 naming userId for a member without credit state", async () => {
    const r = await get("/v1/me/balance", bearer(await memberToken("nobody")));
    expectRefusal(r, 404, "member_not_found", "userId");
  });

  it("refuses a missing, malformed, expired, forged or exp-less credential with 401", async () => {
    const none = await get("/v1/me/balance");
    expectRefusal(none, 401, "unauthorized", "authorization");
    expect(none.headers["www-authenticate"]).toBe("Bearer");
    expectRefusal(
      await get("/v1/me/balance", { authorization: "Basic abc" }),
      401,
      "unauthorized",
      "authorization",
    );
    expectRefusal(
      await get("/v1/me/balance", bearer("not-a-configured-token-123")),
      401,
      "unauthorized",
      "authorization",
    );
    expectRefusal(
      await get("/v1/me/balance", bearer(await memberToken("ann", { expiresInSeconds: -60 }))),
      401,
      "token_expired",
      "authorization",
    );
    const forged = await memberToken("ann", { secret: "another-key-0123456789-abcdefghijkl" });
    expectRefusal(
      await get("/v1/me/balance", bearer(forged)),
      401,
      "invalid_token",
      "authorization",
    );
    expectRefusal(
      await get("/v1/me/balance", bearer(await memberToken("ann", { withoutExp: true }))),
      401,
      "invalid_token",
      "authorization",
    );
  });

  it("refuses service and admin credentials on /v1/me with 403", async () => {
    expectRefusal(await get("/v1/me/balance", admin), 403, "forbidden", "authorization");
    expectRefusal(await get("/v1/me/balance", service), 403, "forbidden", "authorization");
  });
});

describe("GET /v1/members/:userId/balance", () => {
  it("answers admins, services and the member itself", async () => {
    for (const headers of [admin, service, bearer(await memberToken("ann"))]) {
      const r = await get("/v1/members/ann/balance", headers);
      expect(r.status).toBe(200);
      expect(r.body.userId).toBe("ann");
    }
  });

  it("refuses another member's balance with 403 naming userId", async () => {
    const r = await get("/v1/members/zed/balance", bearer(await memberToken("ann")));
    expectRefusal(r, 403, "forbidden", "userId");
  });

  it("answers 400 naming userId when it is not an id, 404 when unknown", async () => {
    expectRefusal(await get("/v1/members/a%20b/balance", admin), 400, "invalid_request", "userId");
    expectRefusal(await get("/v1/members/ghost/balance", admin), 404, "member_not_found", "userId");
  });
});

describe("GET /v1/me/transactions", () => {
  it("lists the last 10 tasks from ClickHouse, newest first, when history is current", async () => {
    const r = await get("/v1/me/transactions", bearer(await memberToken("ann")));
    expect(r.status).toBe(200);
    expect(r.body.source).toBe("history");
    expect(r.body.freshness.historyBehind).toBe(false);
    expect(r.body.freshness.historyNewestAt).not.toBeNull();
    expect(r.body.transactions).toHaveLength(10);
    expect(r.body.transactions.map((t: { taskId: string }) => t.taskId)).toEqual(
      Array.from({ length: 10 }, (_, i) => `ann-t${11 - i}`),
    );
    const newest = ann.state.recentTasks[0]!;
    expect(r.body.transactions[0]).toEqual({
      taskId: "ann-t11",
      feature: "agent",
      at: new Date(newest.lastAtMs).toISOString(),
      creditsMicros: newest.costMicros,
      credits: expect.stringMatching(/^\d+(\.\d+)?$/),
    });
  });

  it("answers from the live Redis copy when ClickHouse lags behind it", async () => {
    const r = await get("/v1/me/transactions", bearer(await memberToken("lag")));
    expect(r.status).toBe(200);
    expect(r.body.source).toBe("live");
    expect(r.body.freshness.historyBehind).toBe(true);
    expect(r.body.transactions.map((t: { taskId: string }) => t.taskId)).toEqual([
      "lag-t2",
      "lag-t1",
      "lag-t0",
    ]);
  });

  it("answers from the live Redis copy when ClickHouse fails, saying why", async () => {
    const r = await get("/v1/me/transactions", bearer(await memberToken("ann")), strict);
    expect(r.status).toBe(200);
    expect(r.body.source).toBe("live");
    expect(r.body.freshness.historyError).toEqual(expect.any(String));
    expect(r.body.transactions).toHaveLength(10);
  });

  it("refuses another member's transactions with 403", async () => {
    const r = await get("/v1/members/ann/transactions", bearer(await memberToken("zed")));
    expectRefusal(r, 403, "forbidden", "userId");
  });
});

describe("POST /v1/admission", () => {
  it("allows a member with credits, and a user not seen yet (a new free member)", async () => {
    for (const userId of ["ann", "brand-new"]) {
      const r = await post("/v1/admission", { userId, feature: "chat" }, service);
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ userId, allowed: true });
    }
  });

  it("pauses an out-of-credits member until the refresh, offering an upgrade", async () => {
    const r = await post("/v1/admission", { userId: "zed", feature: "code" }, service);
    expect(r.body).toMatchObject({
      allowed: false,
      reason: "out_of_credits",
      retryAt: expect.any(String),
      upgrade: { tierId: "plus" },
    });
    expect(r.body.retryAt).toBe(r.body.nextRefreshAt);
  });

  it("pauses a capped member until the window resets", async () => {
    const r = await post("/v1/admission", { userId: "wyn", feature: "chat" }, service);
    expect(r.body).toMatchObject({
      allowed: false,
      reason: "window_cap",
      windowResetAt: new Date(NOW_MS - HOUR_MS + 5 * HOUR_MS).toISOString(),
      upgrade: { tierId: "plus" },
    });
  });

  it("refuses a feature outside the tier, naming the tier that has it", async () => {
    const claw = await post("/v1/admission", { userId: "ann", feature: "claw" }, service);
    expect(claw.body).toMatchObject({
      allowed: false,
      reason: "feature_not_in_tier",
      upgrade: { tierId: "ultra" },
    });
    const swarm = await post(
      "/v1/admission",
      { userId: "ann", feature: "agent", taskKind: "swarm" },
      service,
    );
    expect(swarm.body).toMatchObject({ reason: "feature_not_in_tier", upgrade: { tierId: "pro" } });
  });

  it("names the field of a bad body, and refuses members and admins", async () => {
    expectRefusal(
      await post("/v1/admission", { userId: "ann", feature: "fax" }, service),
      400,
      "invalid_request",
      "feature",
    );
    expectRefusal(
      await post("/v1/admission", { feature: "chat" }, service),
      400,
      "invalid_request",
      "userId",
    );
    expectRefusal(
      await post("/v1/admission", { userId: "ann", feature: "chat", extra: 1 }, service),
      400,
      "invalid_request",
      "extra",
    );
    const member = bearer(await memberToken("ann"));
    expectRefusal(
      await post("/v1/admission", { userId: "ann", feature: "chat" }, member),
      403,
      "forbidden",
      "authorization",
    );
    expectRefusal(
      await post("/v1/admission", { userId: "ann", feature: "chat" }, admin),
      403,
      "forbidden",
      "authorization",
    );
  });
});

describe("admin commands", () => {
  const grant = {
    commandId: "grant-bf-1",
    amountMicros: 5_000_000,
    expiresAt: new Date(NOW_MS + 30 * DAY_MS).toISOString(),
    source: "promotion",
    campaign: "black-friday",
  };

  it("answers a bonus grant 202 once Kafka acknowledged; it is on the commands topic", async () => {
    const r = await post("/v1/admin/members/ann/bonus-grants", grant, admin);
    expect(r.status).toBe(202);
    expect(r.body).toEqual({
      commandId: "grant-bf-1",
      type: "grant_bonus",
      userId: "ann",
      topic: topics.commands,
      issuedAt: new Date(NOW_MS).toISOString(),
      repeat: false,
    });
    const records = await fx.readTopic(topics.commands, { expected: 1, timeoutMs: 20_000 });
    const decoded = await fx.codec.decode("command", records[0]!.value);
    expect(records[0]!.key).toBe("ann");
    expect(decoded).toMatchObject({
      ok: true,
      value: { commandId: "grant-bf-1", userId: "ann", issuedBy: "ops", issuedAt: NOW_MS },
    });
  });

  it("answers a repeat with the same body 202 (repeat: true), another body 409", async () => {
    const again = await post("/v1/admin/members/ann/bonus-grants", { ...grant }, admin);
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ commandId: "grant-bf-1", repeat: true });
    const changed = await post(
      "/v1/admin/members/ann/bonus-grants",
      { ...grant, amountMicros: 6_000_000 },
      admin,
    );
    expectRefusal(changed, 409, "conflict", "commandId");
  });

  it("sends every kind of command", async () => {
    const expiresAt = new Date(NOW_MS + 7 * DAY_MS).toISOString();
    const cases: [string, object, string][] = [
      [
        "subscription",
        { commandId: "c-sub", tierId: "plus", billing: "monthly" },
        "subscription_start",
      ],
      ["subscription/change", { commandId: "c-chg", tierId: "pro" }, "subscription_change"],
      ["subscription/cancel", { commandId: "c-cancel" }, "subscription_cancel"],
      ["grants/ann-trial/revoke", { commandId: "c-revoke" }, "revoke_grant"],
      [
        "adjustments",
        { commandId: "c-adj", amountMicros: 2_000_000, expiresAt, reason: "support" },
        "adjust",
      ],
      [
        "adjustments",
        { commandId: "c-adj-neg", amountMicros: -1_000, reason: "correction" },
        "adjust",
      ],
      [
        "legacy-migration",
        { commandId: "c-mig", unusedUses: { ppt: 3, agent: 2 } },
        "migrate_legacy",
      ],
    ];
    for (const [path, body, type] of cases) {
      const r = await post(`/v1/admin/members/ann/${path}`, body, admin);
      expect({ path, status: r.status, type: r.body.type }).toEqual({ path, status: 202, type });
    }
  });

  it("names the field of a bad command and sends nothing", async () => {
    const refusals: [string, object, string][] = [
      ["bonus-grants", { ...grant, commandId: "b1", amountMicros: -5 }, "amountMicros"],
      ["bonus-grants", { ...grant, commandId: "b2", amountMicros: 1.5 }, "amountMicros"],
      ["bonus-grants", { ...grant, commandId: "b3", amountMicros: "5" }, "amountMicros"],
      ["bonus-grants", { amountMicros: 5, expiresAt: grant.expiresAt }, "commandId"],
      ["bonus-grants", { ...grant, commandId: "has space" }, "commandId"],
      ["bonus-grants", { ...grant, commandId: "b4", expiresAt: "tomorrow" }, "expiresAt"],
      [
        "bonus-grants",
        { ...grant, commandId: "b5", expiresAt: new Date(NOW_MS - DAY_MS).toISOString() },
        "expiresAt",
      ],
      ["bonus-grants", { ...grant, commandId: "b6", recurrence: "2h" }, "recurrence"],
      ["subscription", { commandId: "b7", tierId: "gold", billing: "monthly" }, "tierId"],
      ["subscription", { commandId: "b8", tierId: "free", billing: "monthly" }, "tierId"],
      ["subscription", { commandId: "b9", tierId: "plus" }, "billing"],
      ["adjustments", { commandId: "b10", amountMicros: 0, reason: "x" }, "amountMicros"],
      ["adjustments", { commandId: "b11", amountMicros: 5, reason: "x" }, "expiresAt"],
      ["legacy-migration", { commandId: "b12", unusedUses: { fax: 3 } }, "unusedUses.fax"],
      ["legacy-migration", { commandId: "b13", unusedUses: { ppt: -1 } }, "unusedUses.ppt"],
    ];
    for (const [path, body, field] of refusals) {
      const r = await post(`/v1/admin/members/ann/${path}`, body, admin);
      expect({ path, field, status: r.status, error: r.body.error }).toMatchObject({
        path,
        field,
        status: 400,
        error: { code: "invalid_request", field },
      });
    }
    // A refused body claims no id: the same id with a good body is accepted.
    const ok = await post(
      "/v1/admin/members/ann/bonus-grants",
      { ...grant, commandId: "b1" },
      admin,
    );
    expect(ok.status).toBe(202);
  });

  it("refuses members and services with 403 and no credential with 401", async () => {
    const member = bearer(await memberToken("ann"));
    for (const headers of [member, service]) {
      expectRefusal(
        await post("/v1/admin/members/ann/bonus-grants", grant, headers),
        403,
        "forbidden",
        "authorization",
      );
    }
    expectRefusal(
      await post("/v1/admin/members/ann/bonus-grants", grant, {}),
      401,
      "unauthorized",
      "authorization",
    );
  });

  it("refuses a body that is not JSON, naming the body", async () => {
    const r = await api.app.inject({
      method: "POST",
      url: "/v1/admin/members/ann/bonus-grants",
      headers: { ...admin, "content-type": "application/json" },
      payload: "{not json",
    });
    expectRefusal({ status: r.statusCode, body: r.json() }, 400, "invalid_json", "body");
  });
});

describe("rate limits", () => {
  it("answers 429 with the error body past a member's limit, per caller", async () => {
    const token = bearer(await memberToken("lag"));
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await get("/v1/me/balance", token, strict)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const limited = await get("/v1/me/balance", token, strict);
    expectRefusal(limited, 429, "rate_limited", "authorization");
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    // Another member has a budget of their own.
    expect((await get("/v1/me/balance", bearer(await memberToken("zed")), strict)).status).toBe(
      200,
    );
  });

  it("counts refused credentials by address, so guessing tokens is limited too", async () => {
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      statuses.push(
        (await get("/v1/me/balance", bearer(`guess-${i}-0123456789abcdef`), strict)).status,
      );
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
  });
});

describe("documents and operations", () => {
  it("serves an OpenAPI document listing every route, generated from the schemas", async () => {
    const r = await get("/docs/json");
    expect(r.status).toBe(200);
    const paths = r.body.paths as Record<string, Record<string, unknown>>;
    const routes = Object.entries(paths).flatMap(([p, methods]) =>
      Object.keys(methods).map((m) => `${m.toUpperCase()} ${p}`),
    );
    expect(routes.sort()).toEqual(
      [
        "GET /v1/me/balance",
        "GET /v1/me/transactions",
        "GET /v1/members/{userId}/balance",
        "GET /v1/members/{userId}/transactions",
        "POST /v1/admission",
        "POST /v1/admin/members/{userId}/bonus-grants",
        "POST /v1/admin/members/{userId}/subscription",
        "POST /v1/admin/members/{userId}/subscription/change",
        "POST /v1/admin/members/{userId}/subscription/cancel",
        "POST /v1/admin/members/{userId}/grants/{grantId}/revoke",
        "POST /v1/admin/members/{userId}/adjustments",
        "POST /v1/admin/members/{userId}/legacy-migration",
      ].sort(),
    );
    const grantOp = paths["/v1/admin/members/{userId}/bonus-grants"]!.post as {
      requestBody: { content: { "application/json": { schema: { required: string[] } } } };
      responses: Record<string, unknown>;
    };
    expect(grantOp.requestBody.content["application/json"].schema.required).toEqual(
      expect.arrayContaining(["commandId", "amountMicros", "expiresAt"]),
    );
    expect(Object.keys(grantOp.responses)).toEqual(
      expect.arrayContaining(["202", "400", "401", "403", "409", "429"]),
    );
    const ui = await api.app.inject({ method: "GET", url: "/docs/" });
    expect([200, 302]).toContain(ui.statusCode);
  });

  it("serves /healthz, Prometheus /metrics and a JSON 404 for unknown routes", async () => {
    expect((await get("/healthz")).body).toEqual({ status: "ok" });
    const metrics = await api.app.inject({ method: "GET", url: "/metrics" });
    expect(metrics.body).toContain("cf_api_requests_total");
    expect(metrics.body).toContain('cf_api_commands_sent_total{type="grant_bonus"');
    expectRefusal(await get("/v2/nothing"), 404, "not_found", "");
  });

  it("serves the balance page and its assets with a strict content policy", async () => {
    const page = await api.app.inject({ method: "GET", url: "/" });
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toContain("text/html");
    expect(page.headers["content-security-policy"]).toContain("default-src 'none'");
    expect(page.body).toContain('<script src="/page.js" defer>');
    expect(page.body).toContain('data-poll-ms="3000"');
    const script = await api.app.inject({ method: "GET", url: "/page.js" });
    expect(script.headers["content-type"]).toContain("text/javascript");
    expect(script.body).toContain("/v1/me/balance");
    expect(script.body).toContain("sessionStorage");
    const css = await api.app.inject({ method: "GET", url: "/page.css" });
    expect(css.statusCode).toBe(200);
  });
});
