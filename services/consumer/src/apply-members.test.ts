// Goal: the unit of work, over an in-memory store, ends where the engine does. Records of many
// members applied = the engine over each member's records in offset order, whatever was applied
// before (a record at or below the stored offset is skipped), whatever another writer did between
// a load and a write (the member is reloaded and redone, up to maxCasRetries, then the unit fails
// cas_exhausted), and after a unit that failed and came again; its ledger entries reach the relay
// once each, leftovers of a predecessor first. too_old refusals come back as dead letters, an
// engine failure as a failure with the member's state as it was, and the sweeper writes only
// the members that time changed. A member is opened at its first record's time.

import type { Classified, InputRecord, LedgerEntryRecord, RawRecord } from "@creditflow/contracts";
import { ledgerRecordFromEntry } from "@creditflow/contracts";
import {
  apply,
  type CreditCommand,
  decodeState,
  type EngineContext,
  type EngineInput,
  encodeState,
  type LedgerEntry,
  type MemberState,
  nextDeadlineMs,
  openMember,
} from "@creditflow/engine";
import { type MemberStore, offsetField, outboxValues } from "@creditflow/member-store";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeEntry,
  encodeEntryAsJson,
  type HeldMember,
  MemoryMemberStore,
  outboxFieldOf,
} from "../testing/memory-store.ts";
import { loadConfig } from "../testing/shipped-config.ts";
import { usage } from "../testing/unit-fakes.ts";
import {
  applyToMembers,
  type Decode,
  fillCache,
  type MemberWork,
  memberSignUpMs,
} from "./apply-members.ts";
import { MemberCache } from "./cache.ts";
import { ConsumerError } from "./errors.ts";
import type { UnitStore } from "./unit-store.ts";

// The real store satisfies the unit's interface as it is (checked by the type checker).
const _redisStoreIsAUnitStore = (store: MemberStore): UnitStore => store;

const config = loadConfig();
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** 2026-01-10T00:00Z: the records' own times are around here. */
const T0 = Date.UTC(2026, 0, 10);
const NOW = T0 + HOUR;
const ctx: EngineContext = { config, nowMs: NOW };
const USAGE = "cf.usage";
const COMMANDS = "cf.commands";
const MICROS_PER_CREDIT = 1_000_000;

function bonus(
  userId: string,
  id: string,
  atMs: number,
  micros: number,
  expiresAtMs: number,
): CreditCommand {
  return {
    type: "grant_bonus",
    id,
    userId,
    atMs,
    source: "promotion",
    amountMicros: micros,
    effectiveFromMs: atMs,
    expiresAtMs,
    priority: 0,
    recurrence: null,
  };
}

function record(
  userId: string,
  offset: number,
  input: EngineInput,
  acceptedAtMs: number | null = input.type === "usage" ? input.eventAtMs : input.atMs,
): InputRecord {
  const topic = input.type === "usage" ? USAGE : COMMANDS;
  return {
    topic,
    partition: 0,
    offset: BigInt(offset),
    input,
    acceptedAtMs,
    raw: { topic, partition: 0, offset: String(offset), key: Buffer.from(userId), value: null },
  };
}

/** A record as read from the usage topic, not decoded. */
function raw(userId: string, offset: number): RawRecord {
  return {
    topic: USAGE,
    partition: 0,
    offset: String(offset),
    key: Buffer.from(userId),
    value: null,
  };
}

/** A unit's works: its records grouped by member, each member's in offset order. */
function worksOf(records: InputRecord[]): MemberWork[] {
  const byUser = new Map<string, MemberWork>();
  for (const r of records) {
    const work = byUser.get(r.input.userId);
    if (work === undefined) byUser.set(r.input.userId, { userId: r.input.userId, records: [r] });
    else work.records.push(r);
  }
  return [...byUser.values()];
}

/** The ledger record of an entry as the consumer relays it, naming its source record. */
function sourced(e: LedgerEntry, r: InputRecord): LedgerEntryRecord {
  return {
    ...ledgerRecordFromEntry(e),
    sourceTopic: r.topic,
    sourcePartition: r.partition,
    sourceOffset: Number(r.offset),
  };
}

/**
 * The engine alone over one member's records in offset order, from a stored member: records at
 * or below its offsets skipped, the member opened at its first record's time. What the unit of
 * work must end with.
 */
function engineOver(
  userId: string,
  records: InputRecord[],
  from: Pick<HeldMember, "stateText" | "offsets"> = { stateText: null, offsets: new Map() },
): { state: MemberState | null; offsets: Map<string, bigint>; entries: LedgerEntryRecord[] } {
  let state = from.stateText === null ? null : decodeState(from.stateText);
  const offsets = new Map(from.offsets);
  const entries: LedgerEntryRecord[] = [];
  for (const r of records) {
    const field = offsetField(r.topic, r.partition);
    const last = offsets.get(field);
    if (last !== undefined && r.offset <= last) continue;
    offsets.set(field, r.offset);
    if (state === null) {
      const opened = openMember(userId, memberSignUpMs(r.input, ctx.nowMs), ctx);
      state = opened.state;
      for (const e of opened.entries) entries.push(sourced(e, r));
    }
    const result = apply(state, r.input, ctx, r.acceptedAtMs ?? ctx.nowMs);
    state = result.state;
    if (result.outcome.status === "applied")
      for (const e of result.entries) entries.push(sourced(e, r));
  }
  return { state, offsets, entries };
}

/**
 * Runs units the way the consumer does (apply, relay, release, fill the cache) and keeps what
 * reached the relay, per member, in order.
 */
class Shell {
  readonly relayed = new Map<string, LedgerEntryRecord[]>();
  readonly fieldsRelayed: string[] = [];
  readonly store: MemoryMemberStore;
  readonly cache: MemberCache | undefined;
  constructor(store: MemoryMemberStore, cache?: MemberCache) {
    this.store = store;
    this.cache = cache;
  }

  async unit(works: MemberWork[], at: EngineContext = ctx, maxCasRetries = 8) {
    try {
      const result = await applyToMembers(this.store, works, at, maxCasRetries, this.cache);
      for (const f of result.toRelay) {
        this.fieldsRelayed.push(`${f.userId}/${f.field}`);
        const list = this.relayed.get(f.userId) ?? [];
        for (const v of outboxValues(f)) list.push(decodeEntry(v));
        this.relayed.set(f.userId, list);
      }
      await this.store.release(result.toRelay);
      if (this.cache !== undefined) fillCache(this.cache, result);
      return result;
    } catch (error) {
      this.cache?.clear();
      throw error;
    }
  }

  /** Entries relayed for the member, each once (a leftover relayed again counts once). */
  ledger(userId: string): LedgerEntryRecord[] {
    const seen = new Set<string>();
    return (this.relayed.get(userId) ?? []).filter((e) => {
      if (seen.has(e.entryId)) return false;
      seen.add(e.entryId);
      return true;
    });
  }
}

/** Plain objects, as the ledger topic would carry them. */
function plain(entries: LedgerEntryRecord[]): unknown {
  return JSON.parse(JSON.stringify(entries));
}

/** The member as stored and its relayed entries are the engine's over its records of `records`. */
function expectEngineResult(shell: Shell, userId: string, records: InputRecord[]): void {
  const expected = engineOver(
    userId,
    records.filter((r) => r.input.userId === userId),
  );
  const held = shell.store.members.get(userId);
  expect(held?.stateText ?? null).toBe(
    expected.state === null ? null : encodeState(expected.state),
  );
  expect(held?.offsets ?? new Map()).toEqual(expected.offsets);
  expect(held?.outbox.size ?? 0).toBe(0);
  expect(plain(shell.ledger(userId))).toEqual(plain(expected.entries));
}

describe("memberSignUpMs", () => {
  it("opens a member at its first record's time, never after processing time", () => {
    const event = usage("u1", "e1", 100, 10);
    expect(memberSignUpMs(event, 500)).toBe(100);
    expect(memberSignUpMs(event, 50)).toBe(50);
  });
});

describe("applyToMembers", () => {
  it("applies several members' records as the engine does over each member's, in offset order", async () => {
    const records = [
      record("a", 10, bonus("a", "b1", T0, 5 * MICROS_PER_CREDIT, T0 + 30 * DAY)),
      record("b", 11, usage("b", "e1", T0 + 1, 20_000)),
      record("a", 12, usage("a", "e2", T0 + 2, 1_500_000)),
      record("c", 13, usage("c", "e3", T0 + 3, 10_000)),
      record("a", 14, usage("a", "e4", T0 + 4, 30_000)),
      record("b", 15, usage("b", "e1", T0 + 1, 20_000)),
    ];
    const shell = new Shell(new MemoryMemberStore(2));
    const result = await shell.unit(worksOf(records));
    for (const userId of ["a", "b", "c"]) expectEngineResult(shell, userId, records);
    expect(result.counts).toEqual({ applied: 5, duplicate: 1, refused: 0, skipped: 0 });
    expect(result.casConflicts).toBe(0);
    expect(result.deadlines.map((d) => [d.userId, d.version])).toEqual([
      ["a", 1],
      ["b", 1],
      ["c", 1],
    ]);
  });

  it("skips every record at or below the member's stored offset", async () => {
    const records = [
      record("a", 20, usage("a", "e1", T0, 10_000)),
      record("a", 21, usage("a", "e2", T0 + 1, 10_000)),
      record("a", 22, usage("a", "e3", T0 + 2, 10_000)),
    ];
    const shell = new Shell(new MemoryMemberStore());
    await shell.unit(worksOf(records.slice(0, 2)));
    // Redelivered whole (a crash before the commit): the first two are skipped, not duplicated.
    const again = await shell.unit(worksOf(records));
    expect(again.counts).toEqual({ applied: 1, duplicate: 0, refused: 0, skipped: 2 });
    expectEngineResult(shell, "a", records);
    // All of it once more: nothing to apply, nothing written.
    const versionBefore = shell.store.held("a").version;
    const third = await shell.unit(worksOf(records));
    expect(third.counts.skipped).toBe(3);
    expect(shell.store.held("a").version).toBe(versionBefore);
  });

  it("reloads and redoes a member another writer changed between load and write", async () => {
    const records = [
      record("a", 30, bonus("a", "b1", T0, 5 * MICROS_PER_CREDIT, T0 + 30 * DAY)),
      record("a", 31, usage("a", "e1", T0 + 1, 400_000)),
      record("a", 32, usage("a", "e2", T0 + 2, 300_000)),
    ];
    const store = new MemoryMemberStore();
    // A zombie (the partition's previous owner) writes the first record before our write lands.
    store.interfere("a", 1, (held, userId) => zombieApplies(held, userId, records.slice(0, 1)));
    const shell = new Shell(store);
    const result = await shell.unit(worksOf(records));
    expect(result.casConflicts).toBe(1);
    expect(store.refused).toBe(1);
    // The redo skipped what the zombie applied, and relayed the zombie's entries first.
    expect(result.counts).toEqual({ applied: 2, duplicate: 0, refused: 0, skipped: 1 });
    expect(result.leftovers).toBeGreaterThan(0);
    expect(shell.fieldsRelayed).toEqual(["a/x:1", "a/x:2"]);
    expectEngineResult(shell, "a", records);
  });

  it("fails the unit cas_exhausted once a member is refused more than maxCasRetries times", async () => {
    const store = new MemoryMemberStore();
    store.interfere("a", 4);
    const shell = new Shell(store);
    const works = worksOf([record("a", 40, usage("a", "e1", T0, 10_000))]);
    const failure = await shell.unit(works, ctx, 3).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ConsumerError);
    expect((failure as ConsumerError).code).toBe("cas_exhausted");
    expect((failure as ConsumerError).retryable).toBe(true);
    expect(store.refused).toBe(4);
    expect(store.held("a").stateText).toBeNull();
    // maxCasRetries refusals in a row are still redone.
    const next = new MemoryMemberStore();
    next.interfere("a", 3);
    const ok = new Shell(next);
    const result = await ok.unit(worksOf([record("a", 40, usage("a", "e1", T0, 10_000))]), ctx, 3);
    expect(result.casConflicts).toBe(3);
    expectEngineResult(ok, "a", [record("a", 40, usage("a", "e1", T0, 10_000))]);
  });

  it("relays a predecessor's outbox leftovers before the unit's own entries", async () => {
    const store = new MemoryMemberStore();
    const first = [record("a", 50, bonus("a", "b1", T0, MICROS_PER_CREDIT, T0 + 30 * DAY))];
    // A predecessor wrote and crashed before its relay: its entries wait in the outbox.
    const predecessor = await applyToMembers(store, worksOf(first), ctx, 8);
    expect(predecessor.toRelay.map((f) => f.field)).toEqual(["x:1"]);
    const shell = new Shell(store);
    const second = [record("a", 51, usage("a", "e1", T0 + 1, 10_000))];
    const result = await shell.unit(worksOf(second));
    expect(result.leftovers).toBe(predecessor.toRelay[0]!.count);
    expect(result.toRelay.map((f) => f.field)).toEqual(["x:1", "x:2"]);
    expectEngineResult(shell, "a", [...first, ...second]);
  });

  it("gives too_old refusals back as dead letters, their offsets stored", async () => {
    const oldMs = NOW - config.dedupeHorizonMs - DAY;
    const late = record("a", 60, usage("a", "e-old", oldMs, 10_000), NOW);
    const fresh = record("a", 61, usage("a", "e-new", T0, 10_000), NOW);
    const shell = new Shell(new MemoryMemberStore());
    const result = await shell.unit(worksOf([late, fresh]));
    expect(result.rejected).toEqual([
      { raw: late.raw, reason: "too_old", detail: expect.stringContaining("duplicate horizon") },
    ]);
    expect(result.counts).toEqual({ applied: 1, duplicate: 0, refused: 1, skipped: 0 });
    expectEngineResult(shell, "a", [late, fresh]);
    expect(shell.store.held("a").offsets.get(offsetField(USAGE, 0))).toBe(61n);
  });

  it("reports an engine failure and leaves the member's state as it was", async () => {
    const shell = new Shell(new MemoryMemberStore());
    const granted = [record("a", 70, bonus("a", "b1", T0, MICROS_PER_CREDIT, T0 + 30 * DAY))];
    await shell.unit(worksOf(granted));
    const before = shell.store.held("a").stateText;
    // A negative acceptance time: the engine's assertion throws (a bug, not a refusal).
    const broken = record("a", 71, usage("a", "e1", T0 + 1, 10_000), -1);
    const result = await shell.unit(worksOf([broken]));
    expect(result.engineFailures).toEqual([
      { raw: broken.raw, detail: expect.stringMatching(/^assertion_failed: /) },
    ]);
    expect(result.counts).toEqual({ applied: 0, duplicate: 0, refused: 0, skipped: 0 });
    expect(shell.store.held("a").stateText).toBe(before);
    // Its offset is stored all the same: a redelivery does not fail on it again.
    expect(shell.store.held("a").offsets.get(offsetField(USAGE, 0))).toBe(71n);
    // And the records after it apply as the engine says, without it.
    const next = record("a", 72, usage("a", "e2", T0 + 2, 10_000));
    await shell.unit(worksOf([broken, next]));
    expectEngineResult(shell, "a", [...granted, next]);
  });

  it("sweeps: writes only the members whose time produced entries", async () => {
    const shell = new Shell(new MemoryMemberStore());
    const records = [
      record("expiring", 80, bonus("expiring", "b1", T0, MICROS_PER_CREDIT, T0 + DAY)),
      record("idle", 81, bonus("idle", "b2", T0, MICROS_PER_CREDIT, T0 + 30 * DAY)),
    ];
    await shell.unit(worksOf(records));
    const later: EngineContext = { config, nowMs: T0 + 2 * DAY };
    const sweep = ["expiring", "idle", "never-written"].map((userId) => ({ userId, records: [] }));
    const result = await shell.unit(sweep, later);
    expect(result.swept).toBe(1);
    expect(shell.store.held("expiring").version).toBe(2);
    expect(shell.store.held("idle").version).toBe(1);
    expect(shell.store.members.get("never-written")?.stateText ?? null).toBeNull();
    const expired = shell.ledger("expiring").filter((e) => e.kind === "expire");
    expect(expired.map((e) => e.amountMicros)).toEqual([-MICROS_PER_CREDIT]);
    expect(result.deadlines.find((d) => d.userId === "never-written")?.deadlineMs).toBeNull();
    expect(result.deadlines.find((d) => d.userId === "idle")?.version).toBe(1);
    // Swept again at the same time: nothing is due any more, nothing is written.
    await shell.unit(
      sweep.map((w) => ({ ...w, records: [] })),
      later,
    );
    expect(shell.store.held("expiring").version).toBe(2);
  });

  it("sweeps a member past a bonus's lead time: written once, its next deadline after now", async () => {
    const shell = new Shell(new MemoryMemberStore());
    await shell.unit(
      worksOf([record("soon", 82, bonus("soon", "b3", T0, MICROS_PER_CREDIT, T0 + 10 * DAY))]),
    );
    // Past the 3-day lead time, before the expiry: a notice, no ledger entry.
    const later: EngineContext = { config, nowMs: T0 + 7 * DAY + HOUR };
    const result = await shell.unit([{ userId: "soon", records: [] }], later);
    expect(shell.store.held("soon").version).toBe(2);
    const deadline = result.deadlines.find((d) => d.userId === "soon")?.deadlineMs;
    expect(deadline).toBeGreaterThan(later.nowMs);
    await shell.unit([{ userId: "soon", records: [] }], later);
    expect(shell.store.held("soon").version).toBe(2);
  });

  it("takes cached members without a load, and reloads one that another writer moved", async () => {
    const store = new MemoryMemberStore();
    const shell = new Shell(store, new MemberCache(100));
    const first = [record("a", 90, usage("a", "e1", T0, 10_000))];
    await shell.unit(worksOf(first));
    const loadsBefore = store.loads;
    const second = [record("a", 91, usage("a", "e2", T0 + 1, 10_000))];
    await shell.unit(worksOf(second));
    expect(store.loads).toBe(loadsBefore);
    // The sweeper of another process writes the member: the cached version is stale.
    store.interfere("a", 1, (held, userId) => zombieApplies(held, userId, []));
    const third = [record("a", 92, usage("a", "e3", T0 + 2, 10_000))];
    const result = await shell.unit(worksOf(third));
    expect(result.casConflicts).toBe(1);
    expect(store.loads).toBe(loadsBefore + 1);
    expectEngineResult(shell, "a", [...first, ...second, ...third]);
  });

  it("fails the unit on a failed write; its redelivery loses nothing and applies nothing twice", async () => {
    const store = new MemoryMemberStore(2);
    const users = ["a", "b", "c", "d", "e"];
    const records = users.map((u, i) => record(u, 100 + i, usage(u, `e-${u}`, T0 + i, 10_000)));
    // Rounds of two members, two in flight: the first round is written, the second fails.
    store.failWrite(2);
    const shell = new Shell(store, new MemberCache(100));
    await expect(shell.unit(worksOf(records))).rejects.toMatchObject({ code: "redis_failed" });
    expect(store.held("a").version).toBe(1);
    expect(store.held("a").outbox.size).toBe(1);
    // The other worker may have written a third round before the failure settled the unit.
    const written = users.filter((u) => store.held(u).version === 1);
    let waiting = 0;
    for (const u of written)
      for (const values of store.held(u).outbox.values()) waiting += values.length;
    const again = await shell.unit(worksOf(records));
    // What was written is skipped and its entries relayed as leftovers, the rest applied.
    expect(again.counts).toMatchObject({ skipped: written.length, applied: 5 - written.length });
    expect(again.leftovers).toBe(waiting);
    expect(again.toRelay[0]?.field).toBe("x:1");
    for (const u of users) expectEngineResult(shell, u, records);
  });

  it("decodes each round's records: bad ones are dead letters, a member left with none is not loaded", async () => {
    const good = record("a", 110, usage("a", "e1", T0, 10_000));
    const alsoGood = record("b", 112, usage("b", "e2", T0 + 1, 10_000));
    const classified = new Map<string, Classified>([
      ["110", { ok: true, record: good }],
      ["111", { ok: false, raw: raw("b", 111), reason: "undecodable", detail: "bad bytes" }],
      ["112", { ok: true, record: alsoGood }],
      ["113", { ok: false, raw: raw("c", 113), reason: "key_mismatch", detail: "names d" }],
    ]);
    const decoded: string[][] = [];
    const decode: Decode = async (read) => {
      decoded.push(read.map((r) => r.offset));
      return read.map((r) => classified.get(r.offset)!);
    };
    const works: MemberWork[] = [
      { userId: "a", records: [], undecoded: [raw("a", 110)] },
      { userId: "b", records: [], undecoded: [raw("b", 111), raw("b", 112)] },
      { userId: "c", records: [], undecoded: [raw("c", 113)] },
    ];
    const store = new MemoryMemberStore(2);
    const result = await applyToMembers(store, works, ctx, 8, undefined, decode);
    // One decode per round, of the round's records only.
    expect(decoded).toEqual([["110", "111", "112"], ["113"]]);
    expect(result.rejected.map((r) => [r.raw.offset, r.reason])).toEqual([
      ["111", "undecodable"],
      ["113", "key_mismatch"],
    ]);
    expect(result.counts.applied).toBe(2);
    expect(store.held("a").version).toBe(1);
    expect(store.held("b").offsets.get(offsetField(USAGE, 0))).toBe(112n);
    // c had no record left: neither loaded nor written, no deadline.
    expect(store.members.get("c")?.version ?? 0).toBe(0);
    expect(result.deadlines.map((d) => d.userId)).toEqual(["a", "b"]);
    // The round's records are garbage once it is written.
    expect(works.every((w) => w.records.length === 0 && w.undecoded === undefined)).toBe(true);
    const noDecoder = [{ userId: "a", records: [], undecoded: [raw("a", 114)] }];
    await expect(applyToMembers(store, noDecoder, ctx, 8)).rejects.toMatchObject({
      code: "invalid_options",
    });
  });

  // The property: any records of a few members, any part of them applied by an earlier delivery,
  // any conflicts (a writer bumping the version, or a zombie applying a prefix of the member's
  // records) up to maxCasRetries per member, any round size: the engine's result, entries once.
  it("equals the engine over each member's records, whatever came before and in between", async () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant("usage" as const),
        micros: fc.integer({ min: 1, max: 200_000 }),
      }),
      fc.record({
        kind: fc.constant("bonus" as const),
        micros: fc.integer({ min: 1, max: 3_000_000 }),
      }),
      fc.record({ kind: fc.constant("repeat" as const), of: fc.nat() }),
    );
    const step = fc.record({ member: fc.integer({ min: 0, max: 3 }), op });
    const conflict = fc.record({
      member: fc.integer({ min: 0, max: 3 }),
      times: fc.integer({ min: 1, max: 3 }),
      zombiePrefix: fc.option(fc.nat(), { nil: undefined }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 30 }),
        fc.nat(),
        fc.array(conflict, { maxLength: 3 }),
        fc.integer({ min: 1, max: 3 }),
        async (steps, deliveredBefore, conflicts, membersPerRound) => {
          const records: InputRecord[] = [];
          steps.forEach((s, i) => {
            const userId = `m${s.member}`;
            const atMs = T0 + i * 1_000;
            let input: EngineInput;
            if (s.op.kind === "usage") input = usage(userId, `e${i}`, atMs, s.op.micros * 10);
            else if (s.op.kind === "bonus") {
              input = bonus(userId, `g${i}`, atMs, s.op.micros, T0 + 30 * DAY);
            } else {
              const mine = records.filter((r) => r.input.userId === userId);
              const again = mine[s.op.of % Math.max(1, mine.length)];
              input = again?.input ?? usage(userId, `e${i}`, atMs, 10_000);
            }
            records.push(record(userId, 1_000 + i, input));
          });
          const store = new MemoryMemberStore(membersPerRound);
          const shell = new Shell(store);
          const before = deliveredBefore % (records.length + 1);
          if (before > 0) await shell.unit(worksOf(records.slice(0, before)));
          for (const c of conflicts) {
            const userId = `m${c.member}`;
            const mine = records.filter((r) => r.input.userId === userId);
            store.interfere(userId, c.times, (held, id) => {
              if (c.zombiePrefix !== undefined) {
                zombieApplies(held, id, mine.slice(0, c.zombiePrefix % (mine.length + 1)));
              }
            });
          }
          const result = await shell.unit(worksOf(records), ctx, 3);
          for (let m = 0; m <= 3; m++) expectEngineResult(shell, `m${m}`, records);
          // Each member of the unit: the deadline of the state now stored, at its version.
          for (const d of result.deadlines) {
            const held = store.held(d.userId);
            expect(d.version).toBe(held.version);
            const state = held.stateText === null ? null : decodeState(held.stateText);
            expect(d.deadlineMs).toBe(state === null ? null : nextDeadlineMs(state, ctx));
          }
          // A leftover found again at each reload is relayed once all the same.
          expect(new Set(shell.fieldsRelayed).size).toBe(shell.fieldsRelayed.length);
        },
      ),
      { numRuns: 150 },
    );
  });
});

/**
 * Another writer applying the member's records with the engine (a zombie: the partition's
 * previous owner): its state, offsets and its entries in the outbox field of the version the
 * store gives it.
 */
function zombieApplies(held: HeldMember, userId: string, records: InputRecord[]): void {
  const done = engineOver(userId, records, held);
  if (done.state !== null) held.stateText = encodeState(done.state);
  held.offsets = done.offsets;
  if (done.entries.length > 0) {
    held.outbox.set(
      outboxFieldOf(held.version + 1),
      done.entries.map((e) => encodeEntryAsJson(e)),
    );
  }
}
