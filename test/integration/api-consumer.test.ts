// Goal: an admin command sent through the API reaches the member's balance end to end: the API
// produces it to Kafka, the real deduction consumer applies it to Redis, and the balance endpoint
// shows it (the bonus with its expiry, then the new tier). A repeat of the same commandId is
// answered 202 again and changes nothing: the engine dedups it by id.
import type { Api, Balance } from "@creditflow/api";
import { DAY_MS } from "@creditflow/engine";
import { beforeAll, describe, expect, it } from "vitest";
import { memberToken } from "../../services/api/testing/harness.ts";
import { ADMIN_TOKEN, fixture } from "../support/fixture.ts";

const fx = fixture(import.meta.url, { partitions: 3 });
const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };

let api: Api;

beforeAll(async () => {
  await fx.startConsumer();
  api = await fx.startApi();
});

/** A request with the admin token: its status and JSON body. */
async function asAdmin(method: "GET" | "POST", url: string, payload?: object) {
  const r = await api.app.inject({ method, url, headers: ADMIN, payload });
  return { status: r.statusCode, body: r.json() };
}

const balanceOf = (userId: string) => asAdmin("GET", `/v1/members/${userId}/balance`);

/** An admin command for eve (POST /v1/admin/members/eve/<path>), answered 202; its body. */
async function commandForEve(path: string, payload: object) {
  const r = await asAdmin("POST", `/v1/admin/members/eve/${path}`, payload);
  expect(r.status).toBe(202);
  return r.body;
}

/** Polls the balance endpoint until `done` holds (the consumer applies asynchronously). */
async function balanceWhen(userId: string, done: (body: Balance) => boolean, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await balanceOf(userId);
    if (r.status === 200 && done(r.body)) return r.body;
    if (Date.now() > deadline)
      throw new Error(`balance of ${userId} never matched: ${JSON.stringify(r)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe("admin command to balance, through Kafka and the consumer", () => {
  const expiresAt = new Date(Date.now() + 7 * DAY_MS).toISOString();
  const grant = { commandId: "eve-welcome", amountMicros: 5_000_000, expiresAt, source: "trial" };

  it("shows a granted bonus in the member's balance once the consumer applied it", async () => {
    expect((await balanceOf("eve")).status).toBe(404);
    await commandForEve("bonus-grants", grant);
    const body = await balanceWhen("eve", (b) => b.bonusGrants.length === 1);
    expect(body).toMatchObject({
      percent: 100,
      capacityMicros: 105_000_000,
      remainingByClass: { bonusMicros: 5_000_000, subscriptionMicros: 100_000_000 },
      bonusGrants: [{ grantId: "eve-welcome", remainingMicros: 5_000_000, expiresAt }],
    });
    // The member sees the same through their own token.
    const own = await api.app.inject({
      method: "GET",
      url: "/v1/me/balance",
      headers: { authorization: `Bearer ${await memberToken("eve")}` },
    });
    expect(own.json().bonusGrants[0].grantId).toBe("eve-welcome");
  });

  it("answers a repeated commandId 202 again and grants nothing twice", async () => {
    expect((await commandForEve("bonus-grants", grant)).repeat).toBe(true);
    await fx.caughtUp([(await fx.topics()).commands]);
    const body = await balanceWhen("eve", () => true);
    expect(body.bonusGrants).toHaveLength(1);
    expect(body.remainingByClass.bonusMicros).toBe(5_000_000);
  });

  it("moves the member to the subscribed tier", async () => {
    await commandForEve("subscription", {
      commandId: "eve-sub-plus",
      tierId: "plus",
      billing: "annual",
    });
    const body = await balanceWhen("eve", (b) => b.tier.id === "plus");
    expect(body.tier).toMatchObject({ id: "plus", name: "Plus", billing: "annual" });
    expect(body.remainingByClass.subscriptionMicros).toBe(1_000_000_000);
  });
});
