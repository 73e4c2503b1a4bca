// Goal: the chaos checker passes a world the engine itself produced and catches each kind of
// damage a broken system would leave: a lost debit, a second application (a late duplicate taken
// for a new event among them), a ledger copy with other content, a balance off the ledger, a grant
// outside its bounds, an expiry missing or doubled, ClickHouse rows missing or extra, an entry
// left in an outbox. Every fixture comes from the engine.
import { readFileSync } from "node:fs";
import {
  advanceTo,
  apply,
  type EngineConfig,
  type EngineInput,
  type LedgerEntry,
  type MemberState,
  makeConfig,
  openMember,
  parsePlans,
  parseRateCard,
  priceUsage,
  type UsageEvent,
} from "@creditflow/engine";
import { describe, expect, it } from "vitest";
import {
  type CheckInput,
  checkAll,
  type InvariantResult,
  type LedgerCopy,
  type LedgerFact,
  splitEntryId,
} from "./invariants.ts";
import { faultTable, firstCounterexample, invariantTable } from "./report.ts";

const configDir = new URL("../../deploy/config/", import.meta.url);
const config: EngineConfig = makeConfig(
  parseRateCard(
    JSON.parse(readFileSync(new URL("rate-card.json", configDir), "utf8")),
    "rate-card",
  ),
  parsePlans(JSON.parse(readFileSync(new URL("plans.json", configDir), "utf8")), "plans"),
);
const T0 = Date.UTC(2026, 10, 1);
const LATENESS = config.plans.allowedLatenessMs;

const usage = (id: string, userId: string, inputTokens: number, atMs: number): UsageEvent => ({
  type: "usage",
  id,
  userId,
  taskId: `${id}-task`,
  feature: "chat",
  taskKind: null,
  model: "kimi-k2",
  inputTokens,
  outputTokens: 500,
  cachedInputTokens: 0,
  eventAtMs: atMs,
});

const fact = (e: LedgerEntry): LedgerFact => ({
  entryId: e.id,
  kind: e.kind,
  userId: e.userId,
  grantId: e.grantId,
  amountMicros: e.amountMicros,
  balanceAfterMicros: e.balanceAfterMicros,
  detailMicros: e.detailMicros,
});
const copy = (e: LedgerFact): LedgerCopy => ({ entry: e, digest: JSON.stringify(e) });

/**
 * Two members run through the engine: u1 with a flash bonus that is partly spent and then
 * forfeited, u2 spending past its free allowance (an overdraft). Every store holds it exactly.
 */
function world(): CheckInput {
  const ledger: LedgerFact[] = [];
  const redis: CheckInput["redis"] = new Map();
  const usageTopic: CheckInput["usageTopic"] = new Map();
  const run = (userId: string, steps: Array<{ input: EngineInput | null; nowMs: number }>) => {
    let state: MemberState | null = null;
    for (const { input, nowMs } of steps) {
      const ctx = { config, nowMs };
      if (state === null) {
        const opened = openMember(userId, nowMs, ctx);
        state = opened.state;
        ledger.push(...opened.entries.map(fact));
      }
      const r: { state: MemberState; entries: LedgerEntry[] } =
        input === null ? advanceTo(state, ctx) : apply(state, input, ctx);
      state = r.state;
      ledger.push(...r.entries.map(fact));
      if (input?.type === "usage") {
        const cost = priceUsage(config.rateCard, input.feature, input.model, input)!;
        usageTopic.set(input.id, { userId, costMicros: cost });
      }
    }
    redis.set(userId, { state, outboxLength: 0 });
  };
  const flash = {
    type: "grant_bonus",
    id: "u1-flash",
    userId: "u1",
    atMs: T0,
    source: "promotion",
    amountMicros: 3_000_000,
    effectiveFromMs: T0 - 1000,
    expiresAtMs: T0 + 60_000,
    priority: 0,
    recurrence: null,
  } as const;
  run("u1", [
    { input: flash, nowMs: T0 },
    { input: usage("e1", "u1", 20_000, T0 + 1000), nowMs: T0 + 1000 },
    { input: usage("e2", "u1", 30_000, T0 + 2000), nowMs: T0 + 2000 },
    { input: null, nowMs: T0 + 60_000 + LATENESS + 1 },
  ]);
  run("u2", [
    { input: usage("e3", "u2", 9_000_000, T0 + 500), nowMs: T0 + 500 },
    { input: usage("e4", "u2", 3_000_000, T0 + 900), nowMs: T0 + 900 },
  ]);
  return {
    accepted: new Map(usageTopic),
    // e3 sent again after 300 newer events of u2: the engine answered it as a duplicate.
    lateDuplicates: [{ id: "e3", userId: "u2", newerOfMember: 300 }],
    usageTopic,
    // Each entry relayed twice (a redelivery): identical copies are allowed.
    ledgerTopic: [...ledger.map(copy), ...ledger.slice(0, 3).map(copy)],
    redis,
    historyLedger: ledger.map((e) => ({
      entryId: e.entryId,
      userId: e.userId,
      kind: e.kind,
      amountMicros: e.amountMicros,
    })),
    historyUsageIds: [...usageTopic.keys()],
    expiringGrants: [
      { userId: "u1", grantId: "u1-flash", amountMicros: 3_000_000, expiresAtMs: T0 + 60_000 },
    ],
    deadLetters: 0,
    rebuild: null,
    checkedAtMs: T0 + 60_000 + LATENESS + 60_000,
    latenessMs: LATENESS,
    sweepSlackMs: 30_000,
  };
}

const violated = (results: InvariantResult[]) =>
  Object.fromEntries(results.filter((r) => r.violations > 0).map((r) => [r.name, r.first]));
const entriesOf = (w: CheckInput) => w.ledgerTopic.map((c) => c.entry);

describe("the chaos checker", () => {
  it("holds on a world the engine produced, with duplicate relays of identical entries", () => {
    const w = world();
    const kinds = new Set(entriesOf(w).map((e) => e.kind));
    expect(kinds).toEqual(new Set(["grant", "debit", "overdraft", "expire"]));
    const results = checkAll(w);
    expect(violated(results)).toEqual({});
    expect(results.every((r) => r.checked > 0)).toBe(true);
    expect(firstCounterexample(results)).toBeNull();
  });

  it("catches a lost debit (and the balance it leaves off the ledger)", () => {
    const w = world();
    w.ledgerTopic = w.ledgerTopic.filter((c) => !c.entry.entryId.startsWith("e2#"));
    w.historyLedger = w.historyLedger.filter((r) => !r.entryId.startsWith("e2#"));
    const v = violated(checkAll(w));
    expect(v["every accepted event debited exactly once"]).toMatch(/event e2 .* has no debit/);
    expect(v["member balance in Redis = sum of its ledger entries"]).toMatch(/member u1/);
  });

  it("catches a second application: the same ids with other amounts", () => {
    const w = world();
    const first = w.ledgerTopic.find((c) => c.entry.entryId === "e1#0")!.entry;
    const again = { ...first, amountMicros: first.amountMicros - 7, balanceAfterMicros: 1 };
    w.ledgerTopic.push(copy(again));
    const v = violated(checkAll(w));
    expect(v["ledger copies of one entry id are identical"]).toMatch(/e1#0 .* different content/);
  });

  it.each([
    // u1 has credits left: the copy debits them a second time.
    { id: "e1", userId: "u1", inputTokens: 20_000, atMs: T0 + 1000, kinds: ["debit"] },
    // u2 is past its allowance: the copy writes a second overdraft and moves no balance.
    { id: "e3", userId: "u2", inputTokens: 9_000_000, atMs: T0 + 500, kinds: ["overdraft"] },
  ])("catches a late duplicate applied as a new event ($kinds of $id)", (d) => {
    const w = world();
    w.lateDuplicates = [{ id: d.id, userId: d.userId, newerOfMember: 300 }];
    // What an engine that forgot the id writes for its late copy: the event's entry ids again,
    // made from another record at another time, on top of the member's later state.
    const before = w.redis.get(d.userId)!.state!;
    const copyOf = { ...usage(d.id, d.userId, d.inputTokens, d.atMs), id: `${d.id}-copy` };
    const again = apply(before, copyOf, { config, nowMs: T0 + 600_000 });
    const doubled = again.entries.map((e) => ({
      ...fact(e),
      entryId: e.id.replace(`${d.id}-copy#`, `${d.id}#`),
      source: "creditflow.usage:4:912",
    }));
    expect(doubled.map((e) => e.kind)).toEqual(d.kinds);
    w.ledgerTopic.push(...doubled.map(copy));
    w.redis.set(d.userId, { state: again.state, outboxLength: 0 });
    const v = violated(checkAll(w));
    expect(v["every accepted event debited exactly once"]).toMatch(
      new RegExp(
        `event ${d.id} \\(user ${d.userId}\\) applied twice: ${d.id}#0 is on the ledger from two applications: .* from creditflow\\.usage:4:912`,
      ),
    );
    expect(v["every late duplicate changed nothing (its event applied once)"]).toMatch(
      new RegExp(
        `late duplicate ${d.id} \\(user ${d.userId}, after 300 newer events of the member\\) applied its event again`,
      ),
    );
  });

  it("catches a late duplicate whose event is not on the usage topic", () => {
    const w = world();
    w.lateDuplicates.push({ id: "e8", userId: "u1", newerOfMember: 410 });
    expect(
      violated(checkAll(w))["every late duplicate changed nothing (its event applied once)"],
    ).toMatch(/late duplicate e8 .* no event/);
  });

  it("catches an event debited for more than it costs", () => {
    const w = world();
    w.usageTopic.set("e1", { userId: "u1", costMicros: w.usageTopic.get("e1")!.costMicros - 1 });
    w.accepted.set("e1", w.usageTopic.get("e1")!);
    expect(violated(checkAll(w))["every accepted event debited exactly once"]).toMatch(
      /event e1 .* costs .* cover/,
    );
  });

  it("catches an accepted event Kafka lost", () => {
    const w = world();
    w.accepted.set("e9", { userId: "u2", costMicros: 10 });
    expect(violated(checkAll(w))["every accepted event is on the usage topic"]).toMatch(/e9/);
  });

  it("catches a Redis balance off the ledger and a grant above its amount", () => {
    const w = world();
    const state = structuredClone(w.redis.get("u2")!.state!);
    state.grants[0]!.remainingMicros = state.grants[0]!.amountMicros + 1;
    w.redis.set("u2", { state, outboxLength: 0 });
    const v = violated(checkAll(w));
    expect(v["member balance in Redis = sum of its ledger entries"]).toMatch(/member u2/);
    expect(v["grant remaining within [0, amount], = its ledger sum"]).toMatch(/outside \[0, /);
  });

  it("catches entries out of order on the ledger (the running balance breaks)", () => {
    const w = world();
    const u2 = w.ledgerTopic.filter((c) => c.entry.userId === "u2");
    const others = w.ledgerTopic.filter((c) => c.entry.userId !== "u2");
    w.ledgerTopic = [...others, u2[1]!, u2[0]!, ...u2.slice(2)];
    expect(
      violated(checkAll(w))["ledger running balance chains (no entry lost or reordered)"],
    ).toMatch(/member u2/);
  });

  it("catches a bonus forfeited twice, or not at all", () => {
    const twice = world();
    const expire = twice.ledgerTopic.find((c) => c.entry.kind === "expire")!.entry;
    twice.ledgerTopic.push(
      copy({ ...expire, entryId: `${expire.entryId}-again`, amountMicros: 0 }),
    );
    expect(violated(checkAll(twice))["bonus forfeited exactly once per expired grant"]).toMatch(
      /forfeited 2 times/,
    );
    const never = world();
    never.ledgerTopic = never.ledgerTopic.filter((c) => c.entry.kind !== "expire");
    expect(violated(checkAll(never))["bonus forfeited exactly once per expired grant"]).toMatch(
      /unspent and no expire entry/,
    );
  });

  it("catches ClickHouse rows missing, doubled or differing from the topic", () => {
    const w = world();
    w.historyUsageIds = [...w.historyUsageIds.slice(1), w.historyUsageIds[1]!];
    const row = w.historyLedger[2]!;
    w.historyLedger[2] = { ...row, amountMicros: row.amountMicros + 1 };
    const v = violated(checkAll(w));
    expect(v["ClickHouse usage rows = accepted events (distinct ids)"]).toMatch(/twice|missing/);
    expect(v["ClickHouse ledger rows = ledger entries (ids, amounts)"]).toMatch(
      new RegExp(row.entryId),
    );
  });

  it("catches an entry left in an outbox and dead letters from valid traffic", () => {
    const w = world();
    w.redis.set("u1", { ...w.redis.get("u1")!, outboxLength: 2 });
    w.deadLetters = 3;
    const v = violated(checkAll(w));
    expect(v["Redis outboxes empty after the drain"]).toMatch(/u1 has 2/);
    expect(v["no dead letters from valid traffic"]).toMatch(/3 records/);
  });

  it("splits entry ids into cause and index", () => {
    expect(splitEntryId("lg1-e5#2")).toEqual(["lg1-e5", 2]);
    expect(splitEntryId("u1:expire:g:123")).toBeNull();
  });

  it("prints the tables", () => {
    const results = checkAll(world());
    expect(invariantTable(results)).toMatch(
      /\| every accepted event debited exactly once \| 4 \| held \|/,
    );
    const faults = faultTable([
      {
        kind: "consumer-kill",
        scheduledAtMs: 1000,
        startedAtMs: 1200,
        durationMs: 900,
        detail: "",
        error: null,
      },
      {
        kind: "clickhouse-outage",
        scheduledAtMs: 5000,
        startedAtMs: 5000,
        durationMs: 16_000,
        detail: "",
        error: null,
      },
    ]);
    expect(faults).toMatch(/\| consumer SIGKILL \+ restart \| 1 \| 1\.2 \|/);
    expect(faults).toMatch(/\| ClickHouse stopped, then started \| 1 \| 5\.0 \(16\.0 s\) \|/);
  });
});
