// One unit of work over many members: load them in one round trip, apply their records (or the
// time that passed, for the sweeper) with the engine in memory, and write each back in one
// atomic CAS step. A member whose version moved under us is reloaded and redone from scratch.
// It knows the store only through UnitStore (unit-store.ts): no Redis here, so it is unit-tested
// against an in-memory store (testing/memory-store.ts).

import type {
  Classified,
  DeadLetterReason,
  InputRecord,
  RawRecord,
  ReadRecord,
} from "@creditflow/contracts";
import { type LedgerEntryRecord, ledgerRecordFromEntry } from "@creditflow/contracts";
import {
  advanceTo,
  apply,
  type EngineContext,
  EngineError,
  type EngineInput,
  encodeState,
  type LedgerEntry,
  nextDeadlineMs,
  openMember,
} from "@creditflow/engine";
import {
  decodeStoredState,
  type EncodeLedgerEntry,
  type LoadedMember,
  type MemberWrite,
  type OutboxField,
  offsetField,
} from "@creditflow/member-store";
import type { CachedMember, MemberCache } from "./cache.ts";
import { ConsumerError } from "./errors.ts";
import type { UnitStore } from "./unit-store.ts";

/** A member and its records of this unit, in offset order per source partition. */
export interface MemberWork {
  userId: string;
  /** Empty for the sweeper: only the time that passed is applied. */
  records: InputRecord[];
  /**
   * Records as read, keyed by this member, not decoded yet: a unit's records are decoded in their
   * member's round (`Decode`), so a round's decoded records are garbage once it is written instead
   * of living (and being promoted by the garbage collector) for the whole unit.
   */
  undecoded?: ReadRecord[];
}

/** Decodes and classifies records of one source partition, in order (classify.ts of @creditflow/contracts). */
export type Decode = (records: ReadRecord[]) => Promise<Classified[]>;

/** A record that cannot be applied, for the dead-letter topic. */
export interface Rejected {
  raw: RawRecord;
  reason: DeadLetterReason;
  detail: string;
}

export interface UnitResult {
  /** Outbox fields to relay: leftovers found at load first, then the new ones. */
  toRelay: OutboxField[];
  /** Each member's next deadline at the version now stored. */
  deadlines: { userId: string; version: number; deadlineMs: number | null }[];
  /** Outcome counts by kind. */
  counts: { applied: number; duplicate: number; refused: number; skipped: number };
  /** Records the engine failed on (a bug): dead-lettered, the member's state left as it was. */
  engineFailures: { raw: RawRecord; detail: string }[];
  /** Records that did not decode or validate (or whose key is not their member): dead letters. */
  rejected: Rejected[];
  casConflicts: number;
  leftovers: number;
  /** Members the sweeper wrote (entries made by time alone). */
  swept: number;
  /**
   * What the member cache may hold once this unit's entries are relayed and released
   * (`fillCache`), not before: a member taken from the cache must have nothing in its outbox, or
   * the next writer in this process (the sweeper, a unit of the member's other partition) would
   * relay its own entries before these and break the order of the member's ledger.
   */
  toCache: { userId: string; member: CachedMember }[];
  /** The cache's generation when the unit started: a clear since then drops `toCache`. */
  cacheGeneration: number;
}

/**
 * Sign-up time of a member first seen through a record: the record's own time (usage time or
 * command time), never later than processing time. Deterministic for a given first record, so a
 * replay of the same records opens the member the same way.
 */
export function memberSignUpMs(input: EngineInput, nowMs: number): number {
  const at = input.type === "usage" ? input.eventAtMs : input.atMs;
  return Math.min(at, nowMs);
}

/** The entry's Avro record, naming the source record it came from (no copy of the entry). */
function withSource(e: LedgerEntry, r: InputRecord): LedgerEntryRecord {
  const record = ledgerRecordFromEntry(e);
  record.sourceTopic = r.topic;
  record.sourcePartition = r.partition;
  record.sourceOffset = Number(r.offset);
  return record;
}

type Counts = UnitResult["counts"];
type Computed = {
  write: MemberWrite | null;
  /** The next deadline of the state written (of the loaded state when nothing is written). */
  deadlineMs: number | null;
  failures: UnitResult["engineFailures"];
  /** Records the engine refused too_old: dead letters (their offsets are stored all the same). */
  tooOld: Rejected[];
  counts: Counts;
};

/** The member's records applied in memory; null write when nothing changed. */
function computeMember(
  m: LoadedMember,
  work: MemberWork,
  ctx: EngineContext,
  encode: EncodeLedgerEntry,
): Computed {
  const failures: UnitResult["engineFailures"] = [];
  const tooOld: Rejected[] = [];
  const local: Counts = { applied: 0, duplicate: 0, refused: 0, skipped: 0 };
  let state = m.state;
  const offsets = new Map<string, bigint>();
  const entries: Buffer[] = [];
  let changed = false;
  if (work.records.length === 0) {
    // The sweeper: only time passes.
    if (state === null) return { write: null, deadlineMs: null, failures, tooOld, counts: local };
    const advanced = advanceTo(state, ctx);
    // Notifications without entries (a bonus's lead time passed) still change the state: it
    // records what it told, and its next deadline moves past the lead time.
    if (advanced.entries.length === 0 && advanced.notifications.length === 0) {
      return {
        write: null,
        deadlineMs: nextDeadlineMs(state, ctx),
        failures,
        tooOld,
        counts: local,
      };
    }
    for (const e of advanced.entries) entries.push(encode(ledgerRecordFromEntry(e)));
    state = advanced.state;
    changed = true;
  }
  // A member's records nearly always come from one partition: its field is built once.
  let fieldTopic = "";
  let fieldPartition = -1;
  let field = "";
  for (const r of work.records) {
    if (r.partition !== fieldPartition || r.topic !== fieldTopic) {
      fieldTopic = r.topic;
      fieldPartition = r.partition;
      field = offsetField(r.topic, r.partition);
    }
    const last = offsets.get(field) ?? m.offsets.get(field);
    if (last !== undefined && r.offset <= last) {
      // Applied by an earlier delivery (a crash before the commit, a zombie, a rebalance).
      local.skipped++;
      continue;
    }
    offsets.set(field, r.offset);
    changed = true;
    try {
      let current = state;
      const opening: LedgerEntry[] = [];
      if (current === null) {
        const opened = openMember(work.userId, memberSignUpMs(r.input, ctx.nowMs), ctx);
        current = opened.state;
        opening.push(...opened.entries);
      }
      const result = apply(current, r.input, ctx, r.acceptedAtMs ?? ctx.nowMs);
      state = result.state;
      for (const e of opening) entries.push(encode(withSource(e, r)));
      if (result.outcome.status === "applied") {
        for (const e of result.entries) entries.push(encode(withSource(e, r)));
        local.applied++;
      } else if (result.outcome.status === "duplicate") local.duplicate++;
      else {
        local.refused++;
        const refusal = result.outcome.refusal;
        if (refusal.reason === "too_old") {
          tooOld.push({ raw: r.raw, reason: "too_old", detail: refusal.message });
        }
      }
    } catch (error) {
      if (!(error instanceof EngineError)) throw error;
      failures.push({ raw: r.raw, detail: `${error.code}: ${error.message}` });
    }
  }
  if (!changed || state === null) {
    const deadlineMs = m.state === null ? null : nextDeadlineMs(m.state, ctx);
    return { write: null, deadlineMs, failures, tooOld, counts: local };
  }
  // The write carries the encoded state only: the decoded one (with the entries its id memory
  // holds) is garbage once encoded, instead of surviving the round's trip to Redis.
  return {
    write: {
      userId: work.userId,
      expectedVersion: m.version,
      stateText: encodeState(state),
      offsets,
      outbox: entries,
    },
    deadlineMs: nextDeadlineMs(state, ctx),
    failures,
    tooOld,
    counts: local,
  };
}

/**
 * The members of the first attempt: from the cache when it holds them (nothing to load, and no
 * outbox leftovers: a member enters the cache only once its entries are relayed and released, and
 * the cache is cleared whenever a unit of this process fails), the rest loaded
 * from Redis in one round trip. Later attempts (after a refused CAS) always load from Redis.
 */
async function loadMembers(
  store: UnitStore,
  works: MemberWork[],
  cache: MemberCache | undefined,
  fromCache: Set<string>,
): Promise<Map<string, LoadedMember>> {
  if (cache === undefined) return store.load(works.map((w) => w.userId));
  const missing: string[] = [];
  const cached = new Map<string, LoadedMember>();
  for (const w of works) {
    const c = cache.get(w.userId);
    if (c === undefined) missing.push(w.userId);
    else {
      fromCache.add(w.userId);
      cached.set(w.userId, {
        userId: w.userId,
        version: c.version,
        state: decodeStoredState(w.userId, c.stateText),
        stateText: c.stateText,
        offsets: c.offsets,
        leftovers: [],
      });
    }
  }
  if (missing.length === 0) return cached;
  const loaded = await store.load(missing);
  for (const [userId, m] of cached) loaded.set(userId, m);
  return loaded;
}

/** The member as stored now: what was loaded, with the write's state, version and offsets. */
function toRemember(
  into: UnitResult,
  m: LoadedMember,
  write: MemberWrite | null,
  version: number,
  indexedDeadlineMs: number | null | undefined,
): void {
  const stateText = write === null ? m.stateText : write.stateText;
  if (stateText === null) return;
  let offsets = m.offsets;
  if (write !== null && write.offsets.size > 0) {
    offsets = new Map(m.offsets);
    for (const [field, offset] of write.offsets) offsets.set(field, offset);
  }
  into.toCache.push({
    userId: m.userId,
    member: { version, stateText, offsets, indexedDeadlineMs },
  });
}

/**
 * Called once the unit's outbox entries are relayed and released: the members it loaded or wrote
 * go into the cache (unless a failure cleared it since the unit started).
 */
export function fillCache(cache: MemberCache, result: UnitResult): void {
  for (const c of result.toCache) cache.set(c.userId, c.member, result.cacheGeneration);
}

/**
 * Rounds of members (at most membersPerRound each) in flight at once: the engine works on one
 * while Redis answers the other, and a round's decoded states are garbage as soon as it is written.
 */
const ROUNDS_IN_FLIGHT = 2;

function emptyResult(cacheGeneration: number): UnitResult {
  return {
    toCache: [],
    cacheGeneration,
    toRelay: [],
    deadlines: [],
    counts: { applied: 0, duplicate: 0, refused: 0, skipped: 0 },
    engineFailures: [],
    rejected: [],
    casConflicts: 0,
    leftovers: 0,
    swept: 0,
  };
}

/**
 * Applies a unit of member work to Redis; see the README for why this is exactly once. The
 * members are taken in rounds (each loaded, applied and written on its own, two at a time); the
 * result lists the rounds in unit order. A round that fails fails the unit, but only once every
 * round in flight has settled: nothing of a failed unit reaches the member cache afterwards.
 */
export async function applyToMembers(
  store: UnitStore,
  works: MemberWork[],
  ctx: EngineContext,
  maxCasRetries: number,
  cache?: MemberCache,
  decode?: Decode,
): Promise<UnitResult> {
  const size = store.membersPerRound;
  const generation = cache?.generation ?? 0;
  if (works.length <= size) {
    return applyRound(store, works, ctx, maxCasRetries, cache, generation, decode);
  }
  const rounds: MemberWork[][] = [];
  for (let i = 0; i < works.length; i += size) rounds.push(works.slice(i, i + size));
  const parts: UnitResult[] = new Array(rounds.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < rounds.length) {
      const i = next++;
      try {
        parts[i] = await applyRound(
          store,
          rounds[i]!,
          ctx,
          maxCasRetries,
          cache,
          generation,
          decode,
        );
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const settled = await Promise.allSettled(
    Array.from({ length: Math.min(ROUNDS_IN_FLIGHT, rounds.length) }, worker),
  );
  for (const s of settled) if (s.status === "rejected") throw s.reason;
  const result = emptyResult(generation);
  for (const part of parts) {
    for (const c of part.toCache) result.toCache.push(c);
    for (const e of part.toRelay) result.toRelay.push(e);
    for (const d of part.deadlines) result.deadlines.push(d);
    for (const f of part.engineFailures) result.engineFailures.push(f);
    for (const r of part.rejected) result.rejected.push(r);
    addCounts(result.counts, part.counts);
    result.casConflicts += part.casConflicts;
    result.leftovers += part.leftovers;
    result.swept += part.swept;
  }
  return result;
}

/** One round of members: load, apply, CAS write, redo the refused ones. */
async function applyRound(
  store: UnitStore,
  works: MemberWork[],
  ctx: EngineContext,
  maxCasRetries: number,
  cache: MemberCache | undefined,
  generation: number,
  decode: Decode | undefined,
): Promise<UnitResult> {
  const result = emptyResult(generation);
  const decodedHere = works.filter((w) => w.undecoded !== undefined);
  try {
    const decoded = await decodeRound(works, decode, result);
    await writeRound(store, decoded, ctx, maxCasRetries, cache, result);
  } finally {
    // The records decoded for this round are garbage from here on, though the unit's lists still
    // name their works.
    for (const w of decodedHere) {
      w.records = [];
      w.undecoded = undefined;
    }
  }
  return result;
}

/**
 * Decodes the round's undecoded records in one call; the members left with no record to apply
 * (every one a dead letter) are dropped from the round, so nothing is loaded or written for them.
 */
async function decodeRound(
  works: MemberWork[],
  decode: Decode | undefined,
  result: UnitResult,
): Promise<MemberWork[]> {
  const all: ReadRecord[] = [];
  for (const w of works) if (w.undecoded !== undefined) for (const r of w.undecoded) all.push(r);
  if (all.length === 0) return works;
  if (decode === undefined) {
    throw new ConsumerError("invalid_options", "undecoded records need a decode function");
  }
  const classified = await decode(all);
  const kept: MemberWork[] = [];
  let at = 0;
  for (const w of works) {
    if (w.undecoded === undefined) {
      kept.push(w);
      continue;
    }
    const records: InputRecord[] = [];
    for (let i = 0; i < w.undecoded.length; i++) {
      const c = classified[at++]!;
      if (c.ok) records.push(c.record);
      else result.rejected.push({ raw: c.raw, reason: c.reason, detail: c.detail });
    }
    w.undecoded = undefined;
    w.records = records;
    if (records.length > 0) kept.push(w);
  }
  return kept;
}

/** Load, apply, CAS write, redo the refused ones. */
async function writeRound(
  store: UnitStore,
  works: MemberWork[],
  ctx: EngineContext,
  maxCasRetries: number,
  cache: MemberCache | undefined,
  result: UnitResult,
): Promise<void> {
  // Leftovers are seen again when a refused member is reloaded: each is relayed once. Entries
  // this unit wrote are in new outbox fields (of the new version), never a leftover's.
  const relayed = new Set<string>();
  const relayLeftover = (f: OutboxField) => {
    const key = `${f.userId}\u0000${f.field}`;
    if (relayed.has(key)) return;
    relayed.add(key);
    result.leftovers += f.count;
    result.toRelay.push(f);
  };
  let pending = works;
  for (let attempt = 0; pending.length > 0; attempt++) {
    if (attempt > maxCasRetries) {
      throw new ConsumerError(
        "cas_exhausted",
        `${pending.length} member(s) changed under us ${maxCasRetries} times, e.g. ${pending[0]!.userId}`,
      );
    }
    const fromCache = new Set<string>();
    const loaded =
      attempt === 0
        ? await loadMembers(store, pending, cache, fromCache)
        : await store.load(pending.map((w) => w.userId));
    const writes: MemberWrite[] = [];
    const computedByUser = new Map<string, Computed>();
    for (const w of pending) {
      const m = loaded.get(w.userId)!;
      for (const e of m.leftovers) relayLeftover(e);
      const computed = computeMember(m, w, ctx, store.encodeEntry);
      // Nor does the loaded state outlive the compute (toRemember takes the stored text).
      m.state = null;
      computedByUser.set(w.userId, computed);
      if (computed.write === null) {
        result.deadlines.push({
          userId: w.userId,
          version: m.version,
          deadlineMs: computed.deadlineMs,
        });
        if (cache !== undefined && !fromCache.has(w.userId)) {
          toRemember(result, m, null, m.version, undefined);
        }
      } else writes.push(computed.write);
    }
    const written = await store.write(writes);
    const retry = new Set<string>();
    written.forEach((r, i) => {
      const w = writes[i]!;
      if (r.ok) {
        if (r.written !== null) result.toRelay.push(r.written);
        if (cache !== undefined) {
          const indexed = fromCache.has(r.userId)
            ? cache.indexed(r.userId, w.expectedVersion)
            : undefined;
          // Out of the cache until the write's entries are relayed (fillCache puts it back):
          // meanwhile another writer in this process loads it from Redis, outbox included.
          cache.delete(r.userId);
          toRemember(result, loaded.get(r.userId)!, w, r.version, indexed);
        }
        result.deadlines.push({
          userId: r.userId,
          version: r.version,
          deadlineMs: computedByUser.get(r.userId)!.deadlineMs,
        });
        if (w.offsets.size === 0) result.swept++;
      } else {
        retry.add(r.userId);
        cache?.delete(r.userId);
        result.casConflicts++;
      }
    });
    // A redone member's outcomes and failures are taken from its attempt that was written.
    for (const [userId, computed] of computedByUser) {
      if (retry.has(userId)) continue;
      result.engineFailures.push(...computed.failures);
      result.rejected.push(...computed.tooOld);
      addCounts(result.counts, computed.counts);
    }
    pending = pending.filter((w) => retry.has(w.userId));
  }
}

function addCounts(into: UnitResult["counts"], from: UnitResult["counts"]): void {
  into.applied += from.applied;
  into.duplicate += from.duplicate;
  into.refused += from.refused;
  into.skipped += from.skipped;
}
