// Goal: the balance answer is written exactly as the route returns it, nulls and enums included,
// and its schema has no `anyOf` (fast-json-stringify validates every choice of an anyOf with ajv
// on every answer); a request field that is an enum or nullable is still validated.
import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import {
  AdmissionBodySchema,
  type Balance,
  BalanceSchema,
  GrantBonusBodySchema,
} from "./schemas.ts";

const window5h = { capMicros: 5_000_000, usedMicros: 120_000, percentUsed: 2, resetsAt: null };
const balance: Balance = {
  userId: "ann",
  tier: { id: "plus", name: "Plus", billing: "monthly", pendingTierId: null, cancelAt: null },
  percent: 61,
  basisPoints: 6_123,
  remainingMicros: 12_345_678,
  remainingCredits: "12.345678",
  capacityMicros: 20_000_000,
  capacityCredits: "20",
  remainingByClass: {
    bonusMicros: 10_000_000,
    bonusCredits: "10",
    subscriptionMicros: 2_345_678,
    subscriptionCredits: "2.345678",
  },
  debtMicros: 0,
  bonusGrants: [
    {
      grantId: "ann-trial",
      source: "trial",
      amountMicros: 10_000_000,
      amountCredits: "10",
      remainingMicros: 10_000_000,
      remainingCredits: "10",
      expiresAt: "2026-12-07T04:00:00.000Z",
    },
  ],
  nextRefreshAt: "2026-12-15T00:00:00.000Z",
  lowCredit: false,
  lowCreditThresholdPercent: 20,
  windows: { fiveHour: window5h, sevenDay: null },
  paused: null,
  asOf: { stateAt: "2026-12-02T04:00:00.000Z", readAt: "2026-12-02T04:40:00.000Z", version: 3 },
};
const paused: Balance = {
  ...balance,
  tier: { ...balance.tier, pendingTierId: "free", cancelAt: "2026-12-31T00:00:00.000Z" },
  windows: { fiveHour: { ...window5h, resetsAt: "2026-12-02T08:00:00.000Z" }, sevenDay: window5h },
  paused: {
    reason: "window_cap",
    message: "Usage cap of this window reached",
    retryAt: "2026-12-02T08:00:00.000Z",
    nextRefreshAt: null,
    windowResetAt: "2026-12-02T08:00:00.000Z",
    upgrade: { tierId: "pro", tierName: "Pro" },
  },
};

describe("the balance answer's schema", () => {
  it("writes every field as returned, null or not", async () => {
    const app = Fastify();
    let answer: Balance = balance;
    app.get("/b", { schema: { response: { 200: BalanceSchema } } }, async () => answer);
    for (const b of [balance, paused]) {
      answer = b;
      const r = await app.inject({ url: "/b" });
      expect(r.statusCode).toBe(200);
      expect(r.json()).toEqual(b);
    }
    await app.close();
  });

  it("has no anyOf", () => {
    expect(JSON.stringify(BalanceSchema)).not.toContain("anyOf");
  });

  it("still validates enum and nullable request fields", async () => {
    const app = Fastify();
    app.post("/g", { schema: { body: GrantBonusBodySchema } }, async () => ({ ok: true }));
    app.post("/a", { schema: { body: AdmissionBodySchema } }, async () => ({ ok: true }));
    const body = { commandId: "c1", amountMicros: 1, expiresAt: "2026-12-31T00:00:00.000Z" };
    const status = async (extra: object) =>
      (await app.inject({ method: "POST", url: "/g", payload: { ...body, ...extra } })).statusCode;
    expect(await status({})).toBe(200);
    expect(await status({ source: "trial", recurrence: null })).toBe(200);
    expect(await status({ recurrence: "7d" })).toBe(200);
    expect(await status({ source: "gift" })).toBe(400);
    expect(await status({ recurrence: "2d" })).toBe(400);
    expect(await status({ recurrence: 7 })).toBe(400);
    expect(await status({ expiresAt: null })).toBe(400);
    const admission = async (taskKind: unknown) =>
      (
        await app.inject({
          method: "POST",
          url: "/a",
          payload: { userId: "ann", feature: "agent", taskKind },
        })
      ).statusCode;
    expect([await admission(null), await admission("swarm"), await admission("nope")]).toEqual([
      200, 200, 400,
    ]);
    await app.close();
  });
});
