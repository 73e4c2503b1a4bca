// Goal: the pure part of the rebuild. A member played through the engine the way the consumer
// plays it (records of two partitions interleaved at their processing times, a sweep in between)
// and written down as ledger facts is replayed to the same state; the replay's order follows the
// ledger's times, not the partitions; and a ledger that does not match the replay (an entry
// missing, an amount changed) is reported naming the member and the field. After a Redis loss
// with entries applied and not relayed (the ledger holds a prefix of the member's entries, the
// consumer group's commit is behind), the member is replayed up to its last relayed record, the
// entries a cut relay left out are owed, and the consumer resuming from its committed offset makes
// every entry exactly once.

import { readFileSync } from "node:fs";
import type { InputRecord } from "@creditflow/contracts";
import {
  advanceTo,
  apply,
  type CreditCommand,
  type EngineConfig,
  type EngineInput,
  type LedgerEntry,
  ledgerBalanceMicros,
  type MemberState,
  makeConfig,
  openMember,
  parsePlans,
  parseRateCard,
  type UsageEvent,
} from "@creditflow/engine";
import { offsetField } from "@creditflow/member-store";
import { describe, expect, it } from "vitest";
import {
  type LedgerFact,
  partitionKey,
  planMember,
  replayMember,
  signUpFromLedger,
} from "./rebuild.ts";

const configDir = new URL("../../../deploy/config/", import.meta.url);
const read = (name: string) => JSON.parse(readFileSync(new URL(name, configDir), "utf8"));
const config: EngineConfig = makeConfig(
  parseRateCard(read("rate-card.json"), "rate-card.json"),
  parsePlans({ ...read("plans.json"), allowedLatenessMs: 1_000 }, "plans.json"),
);
const T0 = Date.UTC(2026, 10, 20, 9, 0, 0);
const USER = "u1";

function usage(n: number, atMs: number, outputTokens = 2_000): UsageEvent {
  return {
    type: "usage",
    id: `${USER}-e${n}`,
    userId: USER,
    taskId: `${USER}-t${n}`,
    feature: "chat",
    taskKind: null,
    model: "kimi-k2",
    inputTokens: 10_000,
    outputTokens,
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
      acceptedAtMs: null,
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
    expect(Object.fromEntries(replay.offsets)).toEqual({
      [offsetField("commands", 3)]: 2n,
      [offsetField("usage", 3)]: 3n,
    });
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
    expect(replay.offsets.get(offsetField("commands", 3))).toBe(0n);
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

/**
 * A bonus, then a unit of usage: e2 costs more than the bonus has left, so it makes two entries
 * (`#0` from the bonus, `#1` from the tier's grant); c1 is refused and makes none.
 */
const unitEvents: Event[] = [
  { topic: "commands", input: bonus("b1", T0, T0 + 86_400_000), nowMs: T0 + 10 },
  { topic: "usage", input: usage(0, T0 + 20), nowMs: T0 + 30 },
  { topic: "usage", input: usage(1, T0 + 40), nowMs: T0 + 50 },
  { topic: "usage", input: usage(2, T0 + 60, 20_000), nowMs: T0 + 70 },
  { topic: "usage", input: usage(3, T0 + 80), nowMs: T0 + 90 },
  {
    topic: "commands",
    input: { type: "subscription_cancel", id: "c1", userId: USER, atMs: T0 },
    nowMs: T0 + 100,
  },
  { topic: "usage", input: usage(4, T0 + 110), nowMs: T0 + 120 },
];

/** The consumer group's committed offsets (first offset not committed) on partition 3. */
const committedAt = (commands: bigint, usage: bigint) =>
  new Map([
    [partitionKey("commands", 3), commands],
    [partitionKey("usage", 3), usage],
  ]);

/** The ledger as relayed up to and including entry `lastId`: a prefix in relay order. */
function relayedUpTo(facts: LedgerFact[], lastId: string): LedgerFact[] {
  const end = facts.findIndex((f) => f.entryId === lastId);
  expect(end).toBeGreaterThanOrEqual(0);
  return facts.slice(0, end + 1);
}

/**
 * The consumer in miniature after the rebuild: reads each partition from the committed offset,
 * skips a record at or below the member's stored offset of its partition, applies the rest at
 * its (later) clock.
 */
function resume(
  state: MemberState,
  offsets: Map<string, bigint>,
  records: InputRecord[],
  committed: Map<string, bigint>,
  nowMs: number,
): { state: MemberState; entries: LedgerEntry[] } {
  const entries: LedgerEntry[] = [];
  for (const r of records) {
    if (r.offset < committed.get(partitionKey(r.topic, r.partition))!) continue;
    const stored = offsets.get(offsetField(r.topic, r.partition));
    if (stored !== undefined && r.offset <= stored) continue;
    const result = apply(state, r.input, { config, nowMs });
    state = result.state;
    if (result.outcome.status === "applied") entries.push(...result.entries);
  }
  return { state, entries };
}

/** Every entry id once over the ledger, the owed entries and the resumed consumer's. */
function expectEachIdOnce(ids: string[]): void {
  const seen = new Set<string>();
  for (const id of ids) {
    expect(seen.has(id), `${id} made twice`).toBe(false);
    seen.add(id);
  }
}

describe("replayMember after a Redis loss with entries not relayed", () => {
  it("leaves the records after the member's last relayed one to the consumer", () => {
    const all = simulate(unitEvents);
    // b1 committed; e0..e4 and c1 applied in Redis, only e0's entry relayed, nothing committed.
    const ledger = relayedUpTo(all.facts, `${USER}-e0#0`);
    const committed = committedAt(1n, 0n);
    const replay = replayMember(USER, ledger, all.records, config, { committed });
    expect(replay.mismatch).toBeNull();
    expect(replay.owed).toEqual([]);
    expect(replay.recordsReplayed).toBe(2);
    // e1..e4, and c1 too: a refusal after the last relayed record was maybe never applied.
    expect(replay.leftToConsumer).toBe(5);
    expect(Object.fromEntries(replay.offsets)).toEqual({
      [offsetField("commands", 3)]: 0n,
      [offsetField("usage", 3)]: 0n,
    });
    expect(comparable(replay.state!)).toEqual(comparable(simulate(unitEvents.slice(0, 2)).state));

    const later = resume(replay.state!, replay.offsets, all.records, committed, T0 + 60_000);
    expectEachIdOnce([...ledger.map((f) => f.entryId), ...later.entries.map((e) => e.id)]);
    expect(later.entries.map((e) => e.id)).toEqual([
      `${USER}-e1#0`,
      `${USER}-e2#0`,
      `${USER}-e2#1`,
      `${USER}-e3#0`,
      `${USER}-e4#0`,
    ]);
    const sum = [...ledger, ...later.entries].reduce((s, e) => s + e.amountMicros, 0);
    expect(ledgerBalanceMicros(later.state)).toBe(sum);
  });

  it("owes the entries of a record whose relay was cut between two sends, and the consumer skips it", () => {
    const all = simulate(unitEvents);
    const cut = all.facts.filter((f) => f.sourceTopic === "usage" && f.sourceOffset === 2n);
    expect(cut.map((f) => f.entryId)).toEqual([`${USER}-e2#0`, `${USER}-e2#1`]);
    // The send boundary fell between e2#0 and e2#1.
    const ledger = relayedUpTo(all.facts, `${USER}-e2#0`);
    const committed = committedAt(1n, 0n);
    const replay = replayMember(USER, ledger, all.records, config, { committed });
    expect(replay.mismatch).toBeNull();
    expect(replay.recordsReplayed).toBe(4);
    expect(replay.leftToConsumer).toBe(3);
    expect(replay.offsets.get(offsetField("usage", 3))).toBe(2n);
    // e2#1 exactly as the consumer made it: same amount, running balance, times and source.
    const original = cut[1]!;
    expect(replay.owed).toEqual([
      expect.objectContaining({
        entryId: original.entryId,
        amountMicros: original.amountMicros,
        balanceAfterMicros: original.balanceAfterMicros,
        eventAt: original.eventAtMs,
        processedAt: original.processedAtMs,
        sourceTopic: "usage",
        sourcePartition: 3,
        sourceOffset: 2,
      }),
    ]);
    const rebuiltSum = [...ledger, ...replay.owed].reduce((s, e) => s + e.amountMicros, 0);
    expect(ledgerBalanceMicros(replay.state!)).toBe(rebuiltSum);

    // e2 is not applied again (its #0 would be made a second time, at another clock).
    const later = resume(replay.state!, replay.offsets, all.records, committed, T0 + 60_000);
    expect(later.entries.map((e) => e.id)).toEqual([`${USER}-e3#0`, `${USER}-e4#0`]);
    expectEachIdOnce([
      ...ledger.map((f) => f.entryId),
      ...replay.owed.map((e) => e.entryId),
      ...later.entries.map((e) => e.id),
    ]);
    expect(ledgerBalanceMicros(later.state)).toBe(
      rebuiltSum + later.entries.reduce((s, e) => s + e.amountMicros, 0),
    );
  });

  it("owes the entries of a sweep whose relay was cut between two sends", () => {
    const all = simulate([
      { topic: "commands", input: bonus("b1", T0, T0 + 10_000), nowMs: T0 + 10 },
      { topic: "commands", input: bonus("b2", T0 + 20, T0 + 10_000), nowMs: T0 + 30 },
      { topic: null, nowMs: T0 + 12_000 }, // the sweeper forfeits both bonuses
    ]);
    const swept = all.facts.filter((f) => f.sourceTopic === null);
    expect(swept.map((f) => f.kind)).toEqual(["expire", "expire"]);
    const ledger = relayedUpTo(all.facts, swept[0]!.entryId);
    const replay = replayMember(USER, ledger, all.records, config, {
      committed: committedAt(2n, 0n),
    });
    expect(replay.mismatch).toBeNull();
    expect(replay.timeSteps).toBe(1);
    expect(replay.owed).toEqual([
      expect.objectContaining({
        entryId: swept[1]!.entryId,
        amountMicros: swept[1]!.amountMicros,
        processedAt: T0 + 12_000,
        sourceTopic: null,
      }),
    ]);
    expect(comparable(replay.state!)).toEqual(comparable(all.state));
  });

  it("still refuses an entry missing for a committed record, or missing before a relayed one", () => {
    const all = simulate(unitEvents);
    const ledger = relayedUpTo(all.facts, `${USER}-e2#0`);
    // e2 committed: its unit was relayed in full before the commit.
    const committed = replayMember(USER, ledger, all.records, config, {
      committed: committedAt(1n, 3n),
    });
    expect(committed.mismatch).toMatchObject({ field: "entry_id" });
    expect(committed.mismatch!.detail).toContain(`${USER}-e2#1 is not in the ledger`);
    // A hole: e1#0 missing while e2#0, relayed after it, is in the ledger.
    const hole = ledger.filter((f) => f.entryId !== `${USER}-e1#0`);
    const replay = replayMember(USER, hole, all.records, config, {
      committed: committedAt(1n, 0n),
    });
    expect(replay.mismatch).toMatchObject({ field: "entry_id" });
    expect(replay.mismatch!.detail).toContain(`${USER}-e2#0 is in the ledger after ${USER}-e1#0`);
  });
});
