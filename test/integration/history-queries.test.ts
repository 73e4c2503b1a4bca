// Goal: each documented analyst query (services/history/queries/*.sql) answers correctly on
// known history: rows written to the raw tables, rollups kept by the materialized views.
import { chTime, migrate, runAnalystQuery } from "@creditflow/history";
import { beforeAll, describe, expect, it } from "vitest";
import { fixture } from "../support/fixture.ts";

const fx = fixture(import.meta.url);
const { iso, urls } = fx;
const client = fx.clickhouseIn();
const DAY0 = Date.UTC(2026, 10, 2, 10, 0, 0);
const period = { from: chTime(Date.UTC(2026, 10, 1)), to: chTime(Date.UTC(2026, 11, 1)) };

function usage(
  user: string,
  task: string,
  feature: string,
  cost: number,
  atMs: number,
  kind: string | null = null,
) {
  return {
    event_id: `${user}-${task}-${cost}-${atMs}`,
    user_id: user,
    task_id: task,
    feature,
    task_kind: kind,
    model: "kimi-k2",
    input_tokens: cost,
    output_tokens: 10,
    cached_input_tokens: 0,
    cost_micros: cost,
    rate_card_version: "test",
    occurred_at: chTime(atMs),
    service: "test",
    kafka_partition: 0,
    kafka_offset: 0,
  };
}

function ledger(
  user: string,
  id: string,
  kind: string,
  amount: number,
  grant: string | null,
  tier: string,
  atMs: number,
) {
  return {
    entry_id: id,
    kind,
    user_id: user,
    grant_id: grant,
    grant_class: grant ? "bonus" : null,
    tier_id: tier,
    amount_micros: amount,
    balance_after_micros: 0,
    detail_micros: 0,
    feature: null,
    task_id: null,
    event_at: chTime(atMs),
    processed_at: chTime(atMs),
    source_topic: null,
    source_partition: null,
    source_offset: null,
    ledger_partition: 0,
    ledger_offset: 0,
  };
}

/** A grant command row, effective on DAY0 for seven days. */
function grant(
  id: string,
  user: string,
  source: string,
  campaign: string,
  amount: number,
  issuedBy: string,
) {
  return {
    grant_id: id,
    user_id: user,
    source,
    campaign,
    amount_micros: amount,
    effective_from: chTime(DAY0),
    expires_at: chTime(DAY0 + 7 * 86_400_000),
    issued_by: issuedBy,
    issued_at: chTime(DAY0),
  };
}

beforeAll(async () => {
  await migrate(urls.clickhouseUrl, iso.database);
  await client.insert({
    table: "usage_events",
    format: "JSONEachRow",
    values: [
      usage("ann", "t1", "agent", 3_000_000, DAY0, "deep_research"),
      usage("ann", "t1", "agent", 2_000_000, DAY0 + 1000, "deep_research"),
      usage("ann", "t2", "chat", 100_000, DAY0 + 2000),
      usage("bob", "t3", "code", 1_000_000, DAY0 + 3000),
      usage("bob", "t4", "chat", 200_000, DAY0 + 4000),
      usage("cyd", "t5", "chat", 50_000, DAY0 + 5000),
      usage("cyd", "t6", "chat", 50_000, Date.UTC(2026, 9, 30)), // outside the period
    ],
  });
  await client.insert({
    table: "grant_commands",
    format: "JSONEachRow",
    values: [
      grant("g-bf-ann", "ann", "promotion", "black-friday", 10_000_000, "admin"),
      grant("g-bf-bob", "bob", "promotion", "black-friday", 10_000_000, "admin"),
      grant("g-trial-cyd", "cyd", "trial", "", 5_000_000, "signup"),
    ],
  });
  await client.insert({
    table: "ledger_entries",
    format: "JSONEachRow",
    values: [
      ledger("ann", "a1", "grant", 10_000_000, "g-bf-ann", "plus", DAY0),
      ledger("ann", "a2", "debit", -4_000_000, "g-bf-ann", "plus", DAY0 + 1000),
      ledger("ann", "a3", "expire", -6_000_000, "g-bf-ann", "plus", DAY0 + 8 * 86_400_000),
      ledger("bob", "b1", "grant", 10_000_000, "g-bf-bob", "free", DAY0),
      ledger("bob", "b2", "expire", -10_000_000, "g-bf-bob", "free", DAY0 + 8 * 86_400_000),
      ledger("cyd", "c1", "grant", 5_000_000, "g-trial-cyd", "free", DAY0),
      ledger("cyd", "c2", "debit", -5_000_000, "g-trial-cyd", "free", DAY0 + 5000),
    ],
  });
});

describe("analyst queries", () => {
  it("top_members ranks members by credits spent in the period", async () => {
    const rows = await runAnalystQuery<{
      user_id: string;
      credits: number;
      tasks: string | number;
    }>(client, "top_members", { ...period, limit: 2 });
    expect(rows.map((r) => [r.user_id, r.credits, Number(r.tasks)])).toEqual([
      ["ann", 5.1, 2],
      ["bob", 1.2, 2],
    ]);
  });

  it("feature_mix shares credits per feature and model", async () => {
    const rows = await runAnalystQuery<{
      feature: string;
      credits: number;
      credit_share_percent: number;
    }>(client, "feature_mix", period);
    expect(rows.map((r) => [r.feature, r.credits])).toEqual([
      ["agent", 5],
      ["code", 1],
      ["chat", 0.35],
    ]);
    expect(rows.reduce((s, r) => s + r.credit_share_percent, 0)).toBeCloseTo(100, 1);
  });

  it("forfeited_bonus_by_campaign adds up issued, spent and forfeited per campaign", async () => {
    const rows = await runAnalystQuery<Record<string, unknown>>(
      client,
      "forfeited_bonus_by_campaign",
      period,
    );
    expect(
      rows.map((r) => [
        r.campaign,
        Number(r.grants),
        r.issued_credits,
        r.spent_credits,
        r.forfeited_credits,
        r.forfeited_percent,
      ]),
    ).toEqual([
      ["black-friday", 2, 20, 4, 16, 80],
      ["(trial)", 1, 5, 5, 0, 0],
    ]);
  });

  it("cost_per_task gives the distribution of a task's cost per feature and kind", async () => {
    const rows = await runAnalystQuery<Record<string, unknown>>(client, "cost_per_task", period);
    expect(
      rows.map((r) => [r.feature, r.task_kind, Number(r.tasks), r.mean_credits, r.p50_credits]),
    ).toEqual([
      ["agent", "deep_research", 1, 5, 5],
      ["chat", "", 3, 0.1167, 0.1],
      ["code", "", 1, 1, 1],
    ]);
  });

  it("members_near_window_caps finds members at or over a share of their 5-hour cap", async () => {
    const rows = await runAnalystQuery<Record<string, unknown>>(
      client,
      "members_near_window_caps",
      {
        at: chTime(DAY0 + 10_000),
        tiers: ["free", "plus"],
        caps_micros: [1_000_000, 25_000_000],
        threshold_percent: 80,
      },
    );
    // bob (free, cap 1 credit) used 1.2; ann (plus, cap 25) used 5.1: 20%, under the threshold.
    expect(rows.map((r) => [r.user_id, r.tier_id, r.used_credits, r.used_percent])).toEqual([
      ["bob", "free", 1.2, 120],
    ]);
  });
});
