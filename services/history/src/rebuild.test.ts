// Goal: the pure part of the rebuild. A member played through the engine the way the consumer
// plays it (records of two partitions interleaved at their processing times, a sweep in between)
// and written down as ledger facts is replayed to the same state; the replay's order follows the
// ledger's times, not the partitions; and a ledger that does not match the replay (an entry
// missing, an amount changed) is reported naming the member and the field.

import { readFileSync } from "node:fs";
import type { InputRecord } from "@creditflow/consumer";
import {
  advanceTo,
  apply,
  type CreditCommand,
  type EngineConfig,
  type EngineInput,
  type LedgerEntry,
  type MemberState,
  makeConfig,
  openMember,
  parsePlans,
  parseRateCard,
  type UsageEvent,
} from "@creditflow/engine";
import { describe, expect, it } from "vitest";
import { type LedgerFact, planMember, replayMember, signUpFromLedger } from "./rebuild.ts";

const configDir = new URL("../../../deploy/config/", import.meta.url);
const read = (name: string) => JSON.parse(readFileSync(new URL(name, configDir), "utf8"));
const config: EngineConfig = makeConfig(
  parseRateCard(read("rate-card.json"), "rate-card.json"),
  parsePlans({ ...read("plans.json"), allowedLatenessMs: 1_000 }, "plans.json"),
);
const T0 = Date.UTC(2026, 10, 20, 9, 0, 0);
const USER = "u1";

function usage(n: number, atMs: number): UsageEvent {
  return {
    type: "usage",
    id: `${USER}-e${n}`,
    userId: USER,
    taskId: `${USER}-t${n}`,
    feature: "chat",
    taskKind: null,
    model: "kimi-k2",
    inputTokens: 10_000,
    outputTokens: 2_000,
    cachedInputTokens: 0,
    eventAtMs: atMs,
  };
}

function bonus(id: string, atMs: number, expiresAtMs: number): CreditCommand {
  return {
    type: "grant_bonus",
    id,
    userId: USER,
    atMs,
    source: "promotion",
    amountMicros: 500_000,
    effectiveFromMs: atMs,
    expiresAtMs,
    priority: 0,
    recurrence: null,
  };
}

/**
 * A state with its memory of recent ids as a set: a refusal or a duplicate leaves no ledger entry,
 * so where it fell among the other partition's records is recorded nowhere.
 */
function comparable(state: MemberState): unknown {
  const applied = [...state.applied].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { ...state, applied, appliedIdHashes: null };
}

type Event =
  | { topic: "usage" | "commands"; input: EngineInput; nowMs: number }
  | { topic: null; nowMs: number };

/** The consumer in miniature: applies each event at its time and writes the ledger it makes. */
function simulate(events: Event[]): {
  state: MemberState;
  facts: LedgerFact[];
  records: InputRecord[];
} {
  let state: MemberState | null = null;
  const facts: LedgerFact[] = [];
  const records: InputRecord[] = [];
  const offsets = { usage: 0n, commands: 0n };
  const write = (entries: LedgerEntry[], source: InputRecord | null) => {
    for (const e of entries) {
      facts.push({
        entryId: e.id,
        userId: e.userId,
        kind: e.kind,
        amountMicros: e.amountMicros,
        balanceAfterMicros: e.balanceAfterMicros,
        eventAtMs: e.eventAtMs,
        processedAtMs: e.processedAtMs,
        sourceTopic: source?.topic ?? null,
        sourcePartition: source?.partition ?? null,
        sourceOffset: source?.offset ?? null,
        ledgerOffset: BigInt(facts.length),
      });
    }
  };
  for (const ev of events) {
    const ctx = { config, nowMs: ev.nowMs };
    if (ev.topic === null) {
      const advanced = advanceTo(state!, ctx);
      state = advanced.state;
      write(advanced.entries, null);
      continue;
    }
    const record: InputRecord = {
      topic: ev.topic,
      partition: 3,
      offset: offsets[ev.topic]++,
      input: ev.input,
      raw: { topic: ev.topic, partition: 3, offset: "0", key: null, value: null },
    };
    records.push(record);
    const made: LedgerEntry[] = [];
    if (state === null) {
      const opened = openMember(USER, ev.nowMs - 5, ctx);
      state = opened.state;
      made.push(...opened.entries);
    }
    const result = apply(state, ev.input, ctx);
    state = result.state;
    if (result.outcome.status === "applied") made.push(...result.entries);
    write(made, record);
  }
  return { state: state!, facts, records };
}

/** Commands and usage interleaved, a duplicate, a refusal, and a bonus forfeited by a sweep. */
const events: Event[] = [
  { topic: "commands", input: bonus("b1", T0, T0 + 10_000), nowMs: T0 + 10 },
  { topic: "usage", input: usage(0, T0 + 20), nowMs: T0 + 30 },
  { topic: "usage", input: usage(0, T0 + 20), nowMs: T0 + 40 }, // duplicate: no entry
  {
    topic: "commands",
    input: { type: "subscription_cancel", id: "c1", userId: USER, atMs: T0 },
    nowMs: T0 + 50,
  }, // refused: no subscription
  { topic: "usage", input: usage(1, T0 + 60), nowMs: T0 + 70 },
  { topic: "commands", input: bonus("b2", T0 + 80, T0 + 86_400_000), nowMs: T0 + 90 },
  { topic: null, nowMs: T0 + 12_000 }, // the sweeper forfeits what is left of b1
  { topic: "usage", input: usage(2, T0 + 11_900), nowMs: T0 + 12_000 }, // same ms as the sweep
];

describe("replayMember", () => {
  it("replays the consumer's state from the ledger's times, entries verified", () => {
    const { state, facts, records } = simulate(events);
    expect(facts.some((f) => f.kind === "expire" && f.sourceTopic === null)).toBe(true);
    // Kafka gives the records per topic; the ledger's times put them back in order.
    const shuffled = [...records].sort((a, b) => a.topic.localeCompare(b.topic));
    const replay = replayMember(USER, facts, shuffled, config);
    expect(replay.mismatch).toBeNull();
    expect(comparable(replay.state!)).toEqual(comparable(state));
    expect(replay.recordsReplayed).toBe(records.length);
    expect(replay.timeSteps).toBe(1);
    expect(Object.fromEntries(replay.offsets)).toEqual({ "o:commands:3": 2n, "o:usage:3": 3n });
  });

  it("names the member and the field when the ledger differs from the replay", () => {
    const { facts, records } = simulate(events);
    const changed = facts.map((f) =>
      f.entryId === `${USER}-e1#0` ? { ...f, amountMicros: f.amountMicros - 1 } : f,
    );
    expect(replayMember(USER, changed, records, config).mismatch).toMatchObject({
      userId: USER,
      field: "amount_micros",
    });
    const missing = facts.filter((f) => f.entryId !== "b2#0");
    expect(replayMember(USER, missing, records, config).mismatch).toMatchObject({
      field: "entry_id",
    });
    const extra: LedgerFact = { ...facts[1]!, entryId: "stray#0", amountMicros: 0 };
    expect(replayMember(USER, [...facts, extra], records, config).mismatch).toMatchObject({
      field: "entry_id",
    });
  });

  it("replays a partition whose records all left no entry at the member's clock", () => {
    const refusal: CreditCommand = {
      type: "subscription_change",
      id: "ch1",
      userId: USER,
      atMs: T0,
      tierId: "pro",
    };
    const { state, facts, records } = simulate([
      { topic: "usage", input: usage(0, T0 + 20), nowMs: T0 + 30 },
      { topic: "commands", input: refusal, nowMs: T0 + 40 }, // refused: no subscription
      { topic: "usage", input: usage(1, T0 + 50), nowMs: T0 + 60 },
    ]);
    const replay = replayMember(USER, facts, records, config);
    expect(replay.mismatch).toBeNull();
    expect(comparable(replay.state!)).toEqual(comparable(state));
    expect(replay.offsets.get("o:commands:3")).toBe(0n);
  });

  it("refuses to guess a sign-up time when the first entry is not the opening grant", () => {
    const { facts, records } = simulate(events);
    expect(signUpFromLedger(USER, facts)).toBe(T0 + 5);
    expect(replayMember(USER, facts.slice(1), records, config).mismatch?.field).toBe("opening");
  });
});

describe("planMember", () => {
  it("puts a sweep before a record of the same millisecond and keeps offset order per partition", () => {
    const { facts, records } = simulate(events);
    const steps = planMember(facts, [...records].reverse());
    const order = steps.map((s) => (s.kind === "time" ? "sweep" : s.record.input.id));
    // The refusal c1 (processed at +50) and the duplicate of e0 left no entry: each takes the time
    // of the record before it in its partition, so c1 comes right after b1 (+10), before e0.
    expect(order).toEqual(["b1", "c1", "u1-e0", "u1-e0", "u1-e1", "b2", "sweep", "u1-e2"]);
    const refusal = steps[1]!;
    expect(refusal.kind === "record" && refusal.nowMs).toBe(T0 + 10);
    const sweep = steps[6]!;
    expect(sweep.kind === "time" && sweep.nowMs).toBe(T0 + 12_000);
  });
});
