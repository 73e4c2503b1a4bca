// Goal: the unit of work runs its steps in the order that makes a crash at any instant safe
// (write, held by the replicas, relay, release, index deadlines, commit last); a failure at any
// step leaves nothing after it done (no commit, no release of what was not relayed) and the
// unit's redelivery, in the same process or a new one, ends exactly as one clean run, its ledger
// entries each relayed (and kept) once; a member changed under the unit is redone; a unit's
// records are grouped per member and each decoded once; the sweeper takes only the deadline
// shards it is given (the partitions its process owns), in passes of sweeperBatch.

import type { CreditCommandRecord, LedgerEntryRecord, ReadRecord } from "@creditflow/contracts";
import { offsetField } from "@creditflow/member-store";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { MemoryMemberStore } from "../testing/memory-store.ts";
import { loadConfig } from "../testing/shipped-config.ts";
import {
  JsonRecordDecoder,
  RecordingCommit,
  RecordingRelay,
  readCommand,
  readGarbage,
  readUsage,
  usage,
} from "../testing/unit-fakes.ts";
import { MemberCache } from "./cache.ts";
import { ConsumerMetrics } from "./metrics.ts";
import type { FaultStage } from "./options.ts";
import { UnitOfWork } from "./unit-of-work.ts";

const config = loadConfig();
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** 2026-01-10T00:00Z: the records' own times are around here. */
const T0 = Date.UTC(2026, 0, 10);
const NOW = T0 + HOUR;
const USAGE = "cf.usage";
const COMMANDS = "cf.commands";
const CREDIT = 1_000_000;
const noHeartbeat = async () => undefined;

function bonus(userId: string, id: string, atMs: number, expiresAtMs: number): CreditCommandRecord {
  return {
    commandId: id,
    userId,
    issuedAt: atMs,
    issuedBy: "unit-test",
    command: {
      "creditflow.v1.GrantBonus": {
        source: "promotion",
        amountMicros: CREDIT,
        effectiveFrom: atMs,
        expiresAt: expiresAtMs,
        priority: 0,
        recurrence: null,
        campaign: null,
      },
    },
  };
}

/** A unit of work over an in-memory store and recording fakes, all telling one journal. */
function setup(
  o: {
    store?: MemoryMemberStore;
    membersPerRound?: number;
    shardOf?: (userId: string) => number;
    sweeperBatch?: number;
    maxCasRetries?: number;
    nowMs?: number;
  } = {},
) {
  const journal: string[] = [];
  const store = o.store ?? new MemoryMemberStore(o.membersPerRound ?? 250, o.shardOf);
  store.journal = journal;
  const relay = new RecordingRelay(journal);
  const offsets = new RecordingCommit(journal);
  const cache = new MemberCache(1_000);
  const decoder = new JsonRecordDecoder();
  const metrics = new ConsumerMetrics();
  const clock = { nowMs: o.nowMs ?? NOW };
  const stages: [number, FaultStage][] = [];
  const work = new UnitOfWork({
    store,
    relay,
    offsets,
    cache,
    decoder,
    config,
    clock: () => clock.nowMs,
    limits: { maxCasRetries: o.maxCasRetries ?? 8, sweeperBatch: o.sweeperBatch ?? 500 },
    metrics,
    log: pino({ level: "silent" }),
    afterStep: (unit, stage) => {
      stages.push([unit, stage]);
      journal.push(stage);
      return undefined;
    },
  });
  return { journal, store, relay, offsets, cache, decoder, metrics, clock, stages, work };
}

/** Five members' usage, one record that does not decode and one without a key. */
const UNIT: ReadRecord[] = [
  readUsage(100, usage("a", "e1", T0, 10_000)),
  readUsage(101, usage("b", "e2", T0 + 1, 20_000)),
  readGarbage(102, "c"),
  readUsage(103, usage("a", "e3", T0 + 2, 30_000)),
  readUsage(104, usage("c", "e4", T0 + 3, 40_000)),
  readGarbage(105, null),
  readUsage(106, usage("d", "e5", T0 + 4, 50_000)),
  readUsage(107, usage("e", "e6", T0 + 5, 60_000)),
  readUsage(108, usage("b", "e7", T0 + 6, 70_000)),
];

/** What the store holds, as plain data: members (state, offsets, outbox) and deadline shards. */
function held(store: MemoryMemberStore): unknown {
  return {
    members: [...store.members]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([userId, m]) => ({
        userId,
        version: m.version,
        stateText: m.stateText,
        offsets: [...m.offsets],
        outbox: [...m.outbox.keys()],
      })),
    deadlines: [...store.deadlines].map(([shard, index]) => [shard, [...index].sort()]),
  };
}

/** Each member's ledger entries, in the order relayed. */
function byMember(entries: LedgerEntryRecord[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const e of entries) {
    const list = out.get(e.userId) ?? [];
    list.push(`${e.kind}:${e.amountMicros}:${e.entryId}`);
    out.set(e.userId, list);
  }
  return out;
}

/** One unit of UNIT with nothing failing: what every redelivery must end as. */
async function cleanRun() {
  const s = setup({ membersPerRound: 2 });
  await s.work.applyRecords(USAGE, 0, "usage", UNIT, noHeartbeat);
  return s;
}

describe("a unit of work", () => {
  it("writes, waits for the replicas, relays, releases, indexes deadlines and commits, in that order", async () => {
    const s = setup();
    const heartbeats: number[] = [];
    await s.work.applyRecords(USAGE, 3, "usage", UNIT, async () => {
      heartbeats.push(s.journal.length);
    });
    expect(s.journal).toEqual([
      "load",
      "write",
      "replicas",
      "after_write",
      "relay",
      "dead letters",
      "after_relay",
      "release",
      "after_release",
      "index",
      "commit",
      "after_commit",
    ]);
    // The group heartbeat goes between the apply and the relay.
    expect(heartbeats).toEqual([3]);
    expect(s.stages.every(([unit]) => unit === 1)).toBe(true);
    expect(s.offsets.committed).toEqual([{ topic: USAGE, partition: 3, offset: "109" }]);
    // Every entry written reached the ledger, and left its outbox.
    expect(s.relay.ledger.length).toBeGreaterThan(0);
    expect(s.relay.entriesOnce()).toEqual(s.relay.ledger);
    for (const m of s.store.members.values()) expect(m.outbox.size).toBe(0);
    expect(s.relay.deadLetters.map((d) => [d.raw.offset, d.reason])).toEqual([
      ["105", "undecodable"],
      ["102", "undecodable"],
    ]);
    // Each member's deadline indexed at the version now stored.
    for (const userId of ["a", "b", "c", "d", "e"]) {
      expect(s.store.indexedDeadline(userId)?.version).toBe(s.store.held(userId).version);
    }
    const applied = await s.metrics.records.get();
    expect(applied.values.find((v) => v.labels.result === "applied")?.value).toBe(7);
  });

  it("groups the unit's records per member in offset order, decoding each record once", async () => {
    const s = setup({ membersPerRound: 2 });
    await s.work.applyRecords(USAGE, 0, "usage", UNIT, noHeartbeat);
    expect(s.decoder.decoded).toBe(UNIT.length);
    const ledger = byMember(s.relay.ledger);
    // a's debits in its records' order (10,000 then 30,000 micros), after its opening entries.
    const debits = (userId: string) =>
      (ledger.get(userId) ?? []).filter((e) => e.startsWith("debit:")).map((e) => e.split(":")[1]);
    expect(debits("a")).toEqual(["-10000", "-30000"]);
    expect(debits("b")).toEqual(["-20000", "-70000"]);
    expect(s.store.held("a").offsets.get(offsetField(USAGE, 0))).toBe(103n);
  });

  const failures: {
    step: string;
    inject: (s: ReturnType<typeof setup>) => void;
    notAfter: string[];
  }[] = [
    {
      step: "write",
      inject: (s) => s.store.failWrite(2),
      notAfter: ["relay", "release", "index", "commit"],
    },
    {
      step: "replicas",
      inject: (s) => s.store.loseReplicas(2),
      notAfter: ["relay", "release", "index", "commit"],
    },
    {
      step: "relay",
      inject: (s) => s.relay.failNext(),
      notAfter: ["relay", "release", "index", "commit"],
    },
    {
      step: "release",
      inject: (s) => s.store.failRelease(),
      notAfter: ["release", "index", "commit"],
    },
    { step: "index", inject: (s) => s.store.failIndexDeadlines(), notAfter: ["index", "commit"] },
    { step: "commit", inject: (s) => s.offsets.failNext(), notAfter: ["commit"] },
  ];
  for (const f of failures) {
    for (const redoBy of ["the same process", "a new process"] as const) {
      it(`fails at ${f.step} with nothing after it done; redone by ${redoBy}, ends as one clean run`, async () => {
        const clean = await cleanRun();
        const s = setup({ membersPerRound: 2 });
        f.inject(s);
        await expect(s.work.applyRecords(USAGE, 0, "usage", UNIT, noHeartbeat)).rejects.toThrow();
        for (const step of f.notAfter) expect(s.journal).not.toContain(step);
        expect(s.offsets.committed).toEqual([]);
        // The cache may have missed an outbox entry: every member is loaded again.
        expect(s.cache.size).toBe(0);

        const redo = redoBy === "the same process" ? s : setup({ store: s.store });
        // The ledger topic is the same for both processes.
        if (redo !== s) redo.relay.ledger.push(...s.relay.ledger);
        await redo.work.applyRecords(USAGE, 0, "usage", UNIT, noHeartbeat);
        expect(redo.offsets.committed).toEqual(clean.offsets.committed);
        expect(held(s.store)).toEqual(held(clean.store));
        // Each entry reaches the ledger once, but for a relayed field whose release failed: it
        // is relayed again from its outbox (the same bytes and id, kept once by the ledger's readers).
        expect(byMember(redo.relay.entriesOnce())).toEqual(byMember(clean.relay.ledger));
        if (f.step !== "release") expect(redo.relay.ledger).toEqual(redo.relay.entriesOnce());
        else expect(redo.relay.ledger.length).toBeGreaterThan(redo.relay.entriesOnce().length);
      });
    }
  }

  it("redoes a member another writer changed between its load and its write", async () => {
    const clean = await cleanRun();
    const s = setup({ membersPerRound: 2 });
    s.store.interfere("b", 3);
    await s.work.applyRecords(USAGE, 0, "usage", UNIT, noHeartbeat);
    expect(s.store.refused).toBe(3);
    expect((await s.metrics.casConflicts.get()).values[0]?.value).toBe(3);
    expect(byMember(s.relay.ledger)).toEqual(byMember(clean.relay.ledger));
    expect(s.offsets.committed).toEqual(clean.offsets.committed);
  });

  it("fails cas_exhausted, relaying and committing nothing, when a member keeps changing", async () => {
    const s = setup({ maxCasRetries: 2 });
    s.store.interfere("a", 3);
    await expect(s.work.applyRecords(USAGE, 0, "usage", UNIT, noHeartbeat)).rejects.toMatchObject({
      code: "cas_exhausted",
    });
    expect(s.relay.ledger).toEqual([]);
    expect(s.offsets.committed).toEqual([]);
  });
});

describe("the sweeper", () => {
  /** Members 0..5 granted a bonus that expires a day later; member i's deadline in shard i % 3. */
  async function granted(o: { sweeperBatch?: number } = {}) {
    const users = Array.from({ length: 6 }, (_, i) => `u${i}`);
    const s = setup({ shardOf: (u) => Number(u.slice(1)) % 3, ...o });
    const grants = users.map((u, i) => readCommand(200 + i, bonus(u, `g-${u}`, T0, T0 + DAY)));
    await s.work.applyRecords(COMMANDS, 0, "command", grants, noHeartbeat);
    s.clock.nowMs = T0 + 2 * DAY;
    s.journal.length = 0;
    s.relay.ledger.length = 0;
    return { ...s, users };
  }
  const expired = (entries: LedgerEntryRecord[]) =>
    entries.filter((e) => e.kind === "expire").map((e) => e.userId);

  it("sweeps only the shards it owns: due members, apply time, write, relay, release, index", async () => {
    const s = await granted();
    expect(
      await s.work.sweep(
        () => [1],
        () => false,
      ),
    ).toBe(2);
    expect(s.journal).toEqual([
      "due",
      "write",
      "replicas",
      "after_write",
      "relay",
      "after_relay",
      "release",
      "after_release",
      "index",
    ]);
    // The fault hooks see a sweep as unit 0 (input units count from 1).
    expect(s.stages.slice(-3).map(([unit]) => unit)).toEqual([0, 0, 0]);
    expect(expired(s.relay.ledger).sort()).toEqual(["u1", "u4"]);
    expect(s.users.map((u) => s.store.held(u).version)).toEqual([1, 2, 1, 1, 2, 1]);
    // Nothing due in the shard any more; the others are swept by their owners.
    expect(
      await s.work.sweep(
        () => [1],
        () => false,
      ),
    ).toBe(0);
    expect(
      await s.work.sweep(
        () => [0, 2],
        () => false,
      ),
    ).toBe(4);
    expect(s.users.map((u) => s.store.held(u).version)).toEqual([2, 2, 2, 2, 2, 2]);
    // No input offsets move for a sweep.
    expect(s.offsets.committed).toHaveLength(1);
  });

  it("sweeps nothing before the deadline", async () => {
    const s = await granted();
    s.clock.nowMs = T0 + HOUR;
    expect(
      await s.work.sweep(
        () => [0, 1, 2],
        () => false,
      ),
    ).toBe(0);
    expect(s.journal).toEqual(["due"]);
  });

  it("goes in passes of sweeperBatch until none is due, or until stopping", async () => {
    const s = await granted({ sweeperBatch: 2 });
    expect(
      await s.work.sweep(
        () => [0, 1, 2],
        () => true,
      ),
    ).toBe(2);
    expect(
      await s.work.sweep(
        () => [0, 1, 2],
        () => false,
      ),
    ).toBe(4);
    expect(s.journal.filter((j) => j === "due")).toHaveLength(1 + 3);
  });

  it("leaves a failed pass's members due, and the next pass sweeps them once", async () => {
    const s = await granted();
    s.relay.failNext();
    await expect(
      s.work.sweep(
        () => [0],
        () => false,
      ),
    ).rejects.toThrow();
    expect(s.cache.size).toBe(0);
    expect(s.journal).not.toContain("release");
    expect(
      await s.work.sweep(
        () => [0],
        () => false,
      ),
    ).toBe(0);
    // The written members' entries were relayed from their outboxes at the redo's load.
    expect(expired(s.relay.entriesOnce()).sort()).toEqual(["u0", "u3"]);
    expect(s.store.held("u0").outbox.size).toBe(0);
  });
});
