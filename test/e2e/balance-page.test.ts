// Goal: the balance page in real Chromium shows what a member sees under Settings → Subscription:
// the percentage, the next refresh date, each bonus grant's expiry and the last 10 transactions of
// a seeded member; a task run while the page is open (usage produced to Kafka, applied by the real
// consumer) changes the page without a reload; a member out of credits sees the paused notice with
// the refresh time and the upgrade. Screenshots (phone and desktop) are kept as artifacts in
// .state/artifacts/balance-page (CF_ARTIFACTS_DIR overrides). Skips, saying so, without Chromium.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Api, Balance } from "@creditflow/api";
import { DAY_MS, HOUR_MS } from "@creditflow/engine";
import { migrate } from "@creditflow/history";
import type { CreditProducer } from "@creditflow/producer";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildMember,
  historyRows,
  memberToken,
  writeMember,
} from "../../services/api/testing/harness.ts";
import { fixture } from "../support/fixture.ts";
import { bonusGrant, spentMember, taskUsage } from "../support/inputs.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  console.warn(
    `[balance-page] SKIPPED: ${CHROMIUM} is absent; install Debian's chromium (apt-get install -y chromium)`,
  );
}
const ARTIFACTS =
  process.env.CF_ARTIFACTS_DIR ?? join(process.cwd(), ".state/artifacts/balance-page");
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 900 };

const fx = fixture(import.meta.url, { partitions: 3, nowMs: Date.now() });
const { iso, urls, config } = fx;
const topics = fx.topicNames();
const NOW_MS = fx.clock.nowMs;

/** mia: a 20-credit promotion and a 5-credit trial, and 12 tasks over the last days. */
const grants = (
  [
    ["mia-promo", "promotion", 20_000_000, 30],
    ["mia-trial", "trial", 5_000_000, 7],
  ] as const
).map(([id, source, amountMicros, days]) =>
  bonusGrant({
    id,
    userId: "mia",
    source,
    amountMicros,
    atMs: NOW_MS - 3 * DAY_MS,
    expiresAtMs: NOW_MS + days * DAY_MS,
  }),
);
const miaUsage = taskUsage("mia", 12, (i) => ({
  feature: (["chat", "agent", "code", "image"] as const)[i % 4]!,
  model: i % 4 === 3 ? "image-1" : "kimi-k2",
  inputTokens: 40_000 + i * 3000,
  atMs: NOW_MS - (12 - i) * 4 * HOUR_MS,
}));
const mia = buildMember(config, "mia", NOW_MS - 10 * DAY_MS, [...grants, ...miaUsage]);
/** zed: spent everything eight days ago: out of credits until the refresh. */
const zed = spentMember(config, "zed", NOW_MS);

let api: Api;
let base: string;
let producer: CreditProducer;
let browser: Browser;

beforeAll(async () => {
  if (!hasChromium) return;
  mkdirSync(ARTIFACTS, { recursive: true });
  await fx.topics();
  await migrate(urls.clickhouseUrl, iso.database);
  await fx.clickhouse.insert({
    table: `${iso.database}.ledger_entries`,
    format: "JSONEachRow",
    values: historyRows(mia.entries),
  });
  await writeMember(fx.redis, iso.keyPrefix, mia.state);
  await writeMember(fx.redis, iso.keyPrefix, zed.state);
  await fx.startConsumer();
  producer = await fx.producer({ service: "agent" });
  api = await fx.startApi({ adminTokens: [], limits: { pagePollMs: 500 } });
  base = await api.app.listen({ host: "127.0.0.1", port: 0 });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
});

afterAll(async () => {
  await browser?.close();
});

async function apiBalance(userId: string): Promise<Balance> {
  const r = await fetch(`${base}/v1/me/balance`, {
    headers: { authorization: `Bearer ${await memberToken(userId)}` },
  });
  return (await r.json()) as Balance;
}

async function openPage(userId: string, viewport = PHONE): Promise<Page> {
  const context = await browser.newContext({ viewport, locale: "en-GB", timezoneId: "UTC" });
  const page = await context.newPage();
  await page.goto(`${base}/#token=${await memberToken(userId)}`);
  await page.locator("#balance-view").waitFor({ state: "visible", timeout: 15_000 });
  await page.locator("#transactions tr").first().waitFor({ timeout: 15_000 });
  return page;
}

describe.skipIf(!hasChromium)("balance page in Chromium", () => {
  it("shows a seeded member's percentage, refresh date, bonus expiries and 10 transactions", async () => {
    const expected = await apiBalance("mia");
    const page = await openPage("mia");
    // The token left the address bar once read.
    expect(page.url()).toBe(`${base}/`);
    expect(await page.locator("#percent").textContent()).toBe(String(expected.percent));
    expect(await page.locator("#next-refresh time").getAttribute("datetime")).toBe(
      expected.nextRefreshAt,
    );
    const expiries = await page
      .locator("#bonus-list time")
      .evaluateAll((els) => els.map((e) => e.getAttribute("datetime")));
    expect(expiries).toEqual([
      new Date(NOW_MS + 7 * DAY_MS).toISOString(),
      new Date(NOW_MS + 30 * DAY_MS).toISOString(),
    ]);
    expect(await page.locator("#transactions tr").count()).toBe(10);
    const firstRow = await page.locator("#transactions tr").first().textContent();
    expect(firstRow).toContain("Image");
    expect(await page.locator("#windows").isVisible()).toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, "mia-phone.png"), fullPage: true });
    await page.setViewportSize(DESKTOP);
    await page.screenshot({ path: join(ARTIFACTS, "mia-desktop.png"), fullPage: true });
    await page.context().close();
  });

  it("updates without a reload when a task runs", async () => {
    const page = await openPage("mia");
    await page.evaluate("window.notReloaded = true");
    const before = await page.locator("#remaining").textContent();
    // A deep research task: two usage events through Kafka, applied by the consumer.
    for (const [n, tokens] of [
      [0, 400_000],
      [1, 300_000],
    ] as const) {
      await producer.recordUsage({
        eventId: `mia-live-${n}`,
        userId: "mia",
        taskId: "mia-live-task",
        feature: "agent",
        taskKind: "deep_research",
        model: "kimi-k2",
        inputTokens: tokens,
        outputTokens: 50_000,
        occurredAt: Date.now(),
      });
    }
    await expect
      .poll(() => page.locator("#remaining").textContent(), { timeout: 30_000 })
      .not.toBe(before);
    // The new task heads the list (from the live state: history has not seen it yet).
    await expect
      .poll(() => page.locator("#transactions tr td:nth-child(2)").first().textContent(), {
        timeout: 30_000,
      })
      .toBe("Agent");
    expect(await page.evaluate("window.notReloaded")).toBe(true);
    // Once the consumer applied both events, the page shows what the API says.
    await fx.caughtUp([topics.usage]);
    const after = String((await apiBalance("mia")).percent);
    await expect
      .poll(() => page.locator("#percent").textContent(), { timeout: 10_000 })
      .toBe(after);
    expect(await page.locator("#freshness").textContent()).toContain("live balance");
    await page.screenshot({ path: join(ARTIFACTS, "mia-after-task-phone.png"), fullPage: true });
    await page.context().close();
  });

  it("shows a member out of credits the paused notice with the refresh time and the upgrade", async () => {
    const expected = await apiBalance("zed");
    const page = await openPage("zed");
    const paused = page.locator("#paused");
    expect(await paused.isVisible()).toBe(true);
    expect(await page.locator("#percent").textContent()).toBe("0");
    expect(await paused.locator("time").getAttribute("datetime")).toBe(expected.nextRefreshAt);
    expect(await paused.textContent()).toContain("Or upgrade to Plus to continue now.");
    await page.screenshot({ path: join(ARTIFACTS, "zed-paused-phone.png"), fullPage: true });
    await page.setViewportSize(DESKTOP);
    await page.screenshot({ path: join(ARTIFACTS, "zed-paused-desktop.png"), fullPage: true });
    await page.context().close();
  });

  it("takes a pasted token, and asks again when the token is refused", async () => {
    const context = await browser.newContext({ viewport: PHONE });
    const page = await context.newPage();
    await page.goto(`${base}/`);
    await page.locator("#token-box").waitFor({ state: "visible" });
    await page.screenshot({ path: join(ARTIFACTS, "token-box-phone.png") });
    await page.fill("#token-input", await memberToken("mia"));
    await page.click("#token-form button");
    await page.locator("#balance-view").waitFor({ state: "visible" });
    await page.goto(`${base}/#token=${await memberToken("mia", { expiresInSeconds: -10 })}`);
    await page.locator("#token-box").waitFor({ state: "visible" });
    expect(await page.locator("#token-message").textContent()).toContain("expired");
    await context.close();
  });
});
