// The consumer's unit of work, free of the Kafka group and of Redis: a unit's records grouped per
// member and applied in rounds (apply-members.ts), then finished in a fixed order (relay, release,
// index deadlines, commit), and the sweeper's pass over the deadline shards of the partitions
// this process owns, finished the same way. It knows its surroundings through interfaces only
// (UnitStore, Relay, OffsetCommit), so the order of its steps and what a failure at each leaves
// are unit-tested against an in-memory store; consumer.ts wires it to Kafka and Redis.
//
// A unit's steps, in this order, and why:
//  1. write: each member's new state, offsets and ledger entries (its outbox) in one atomic CAS
//     step, resolved once the replicas hold it (UnitStore.write): a write a failover loses must
//     not be relayed or committed.
//  2. relay: the outboxes' entries to the ledger topic (a predecessor's leftovers first) and the
//     dead letters, acknowledged by Kafka (acks=all). An entry leaves its outbox only once the
//     ledger holds it.
//  3. release: the relayed outbox fields deleted. A crash before it relays them again: the same
//     bytes and entry ids, which the ledger's readers keep once.
//  4. index deadlines: each member's next deadline in its partition's shard. After the relay: a
//     crash before it leaves a swept member's old (due) deadline in the index, so the sweeper
//     comes back, finds the unrelayed entries at load and relays them.
//  5. commit: the input offsets, last, once every effect of the unit is durable in Redis and
//     Kafka. A crash before it redelivers the unit, and the redo is idempotent: a record at or
//     below its member's stored offset is skipped, and what it wrote is relayed as a leftover.
// Any failure fails the unit before its commit, and clears the member cache: the unit is redone
// from what Redis holds.

import {
  classifyRecords,
  type ReadRecord,
  type RecordDecoder,
  rawRecordOf,
  type SourceKind,
} from "@creditflow/contracts";
import type { EngineConfig } from "@creditflow/engine";
import type { OutboxField } from "@creditflow/member-store";
import type { Logger } from "pino";
import {
  applyToMembers,
  type Decode,
  fillCache,
  type MemberWork,
  type UnitResult,
} from "./apply-members.ts";
import type { MemberCache } from "./cache.ts";
import type { ConsumerMetrics } from "./metrics.ts";
import type { ConsumerLimits, FaultStage } from "./options.ts";
import type { DeadLetter } from "./relay.ts";
import type { UnitStore } from "./unit-store.ts";

/** Kafka out (KafkaOut of relay.ts): each call resolves once Kafka acknowledged all it sent. */
export interface Relay {
  /** The fields' entries to the ledger topic, keyed by member, in the given order. */
  relayLedger(fields: OutboxField[]): Promise<void>;
  /** Bad records to the dead-letter topic, with why. */
  sendDeadLetters(letters: DeadLetter[]): Promise<void>;
}

/** The next offset to read of one input partition. */
export interface PartitionOffset {
  topic: string;
  partition: number;
  /** Decimal, as Kafka takes it: the last offset of the unit plus one. */
  offset: string;
}

/** The consumer group's offsets: resolves once the group coordinator holds them. */
export interface OffsetCommit {
  commit(offsets: PartitionOffset[]): Promise<void>;
}

export interface UnitOfWorkOptions {
  store: UnitStore;
  relay: Relay;
  offsets: OffsetCommit;
  cache: MemberCache;
  /** Decodes the input topics' records (AvroCodec of @creditflow/kafka). */
  decoder: RecordDecoder;
  config: EngineConfig;
  /** Processing time, epoch ms. */
  clock: () => number;
  limits: Pick<ConsumerLimits, "maxCasRetries" | "sweeperBatch">;
  metrics: ConsumerMetrics;
  log: Logger;
  /**
   * Told after each step of a unit (input units counted from 1, the sweeper's passes 0), and
   * waited for when it returns a promise: the crash and slow-machine tests' fault hooks. Unset
   * in production.
   */
  afterStep?: (unit: number, stage: FaultStage) => Promise<void> | undefined;
}

const NO_DEAD_LETTERS: DeadLetter[] = [];

export class UnitOfWork {
  private readonly store: UnitStore;
  private readonly relay: Relay;
  private readonly offsets: OffsetCommit;
  private readonly cache: MemberCache;
  private readonly decoder: RecordDecoder;
  private readonly config: EngineConfig;
  private readonly clock: () => number;
  private readonly limits: UnitOfWorkOptions["limits"];
  private readonly metrics: ConsumerMetrics;
  private readonly log: Logger;
  private readonly afterStep: UnitOfWorkOptions["afterStep"];
  private unitsStarted = 0;

  constructor(o: UnitOfWorkOptions) {
    this.store = o.store;
    this.relay = o.relay;
    this.offsets = o.offsets;
    this.cache = o.cache;
    this.decoder = o.decoder;
    this.config = o.config;
    this.clock = o.clock;
    this.limits = o.limits;
    this.metrics = o.metrics;
    this.log = o.log;
    this.afterStep = o.afterStep;
  }

  /**
   * One unit: records of one input partition, in offset order, applied to their members,
   * finished and committed. `heartbeat` keeps the group membership alive after the apply.
   */
  async applyRecords(
    topic: string,
    partition: number,
    kind: SourceKind,
    records: ReadRecord[],
    heartbeat: () => Promise<void>,
  ): Promise<void> {
    const { metrics, log } = this;
    const started = performance.now();
    const unit = ++this.unitsStarted;
    try {
      const decode: Decode = (read) =>
        classifyRecords(
          read.map((m) => rawRecordOf(topic, partition, m)),
          kind,
          this.decoder,
          this.config.rateCard,
        );
      const { works, unkeyed } = groupByMember(records);
      const deadLetters: DeadLetter[] = [];
      for (const c of await decode(unkeyed)) {
        if (!c.ok) deadLetters.push({ raw: c.raw, reason: c.reason, detail: c.detail });
      }
      const applyStarted = performance.now();
      const result = await applyToMembers(
        this.store,
        works,
        { config: this.config, nowMs: this.clock() },
        this.limits.maxCasRetries,
        this.cache,
        decode,
      );
      for (const r of result.rejected) deadLetters.push(r);
      metrics.applySeconds.observe((performance.now() - applyStarted) / 1000);
      // A long unit must not cost the group membership (kafkajs throttles to heartbeatInterval).
      await heartbeat();
      for (const f of result.engineFailures) {
        log.error(
          { topic, partition, offset: f.raw.offset, detail: f.detail },
          "engine failed on a record",
        );
        deadLetters.push({ raw: f.raw, reason: "engine_failed", detail: f.detail.slice(0, 500) });
      }
      const relayStarted = performance.now();
      await this.finish(result, deadLetters, unit);
      const commitStarted = performance.now();
      const last = records[records.length - 1]!;
      // Last: the offsets move only once every effect of the unit is durable in Redis and Kafka.
      await this.offsets.commit([
        { topic, partition, offset: (BigInt(last.offset) + 1n).toString() },
      ]);
      if (this.afterStep !== undefined) await this.afterStep(unit, "after_commit");
      if (log.isLevelEnabled("debug")) {
        const ms = (a: number, b: number) => Math.round((b - a) * 10) / 10;
        log.debug(
          {
            topic,
            partition,
            records: records.length,
            members: works.length,
            groupMs: ms(started, applyStarted),
            applyMs: ms(applyStarted, relayStarted),
            relayMs: ms(relayStarted, commitStarted),
            commitMs: ms(commitStarted, performance.now()),
          },
          "unit done",
        );
      }
      const c = result.counts;
      metrics.records.inc({ topic, result: "applied" }, c.applied);
      metrics.records.inc({ topic, result: "duplicate" }, c.duplicate);
      metrics.records.inc({ topic, result: "refused" }, c.refused);
      metrics.records.inc({ topic, result: "skipped" }, c.skipped);
      metrics.records.inc({ topic, result: "dead_letter" }, deadLetters.length);
      metrics.batchSize.observe(records.length);
      metrics.unitSeconds.observe((performance.now() - started) / 1000);
    } catch (error) {
      // A failed unit may leave entries in outboxes that only a load from Redis finds.
      this.cache.clear();
      throw error;
    }
  }

  /**
   * The sweeper: members of `shards()` (the input partitions this process owns, read again at
   * each pass) whose deadline passed, advanced to now through the same write, relay and release,
   * in passes of sweeperBatch until none is due or `stopping()`. Resolves with the members written.
   */
  async sweep(shards: () => readonly number[], stopping: () => boolean): Promise<number> {
    let total = 0;
    for (;;) {
      const nowMs = this.clock();
      const due = await this.store.dueMembers(nowMs, this.limits.sweeperBatch, shards());
      if (due.length === 0) return total;
      let swept: number;
      try {
        const result = await applyToMembers(
          this.store,
          due.map((userId) => ({ userId, records: [] })),
          { config: this.config, nowMs },
          this.limits.maxCasRetries,
          this.cache,
        );
        await this.finish(result, NO_DEAD_LETTERS, 0);
        swept = result.swept;
      } catch (error) {
        this.cache.clear();
        throw error;
      }
      this.metrics.sweptMembers.inc(swept);
      total += swept;
      if (due.length < this.limits.sweeperBatch || stopping()) return total;
    }
  }

  /** What follows a unit's write, up to its commit: relay, release, index deadlines. */
  private async finish(result: UnitResult, deadLetters: DeadLetter[], unit: number): Promise<void> {
    const { metrics, cache } = this;
    if (this.afterStep !== undefined) await this.afterStep(unit, "after_write");
    metrics.leftovers.inc(result.leftovers);
    metrics.casConflicts.inc(result.casConflicts);
    let entries = 0;
    for (const f of result.toRelay) entries += f.count;
    metrics.outboxBacklog.inc(entries);
    try {
      await Promise.all([
        this.relay.relayLedger(result.toRelay),
        this.relay.sendDeadLetters(deadLetters),
      ]);
      metrics.ledgerEntries.inc(entries);
      if (this.afterStep !== undefined) await this.afterStep(unit, "after_relay");
      await this.store.release(result.toRelay);
      if (this.afterStep !== undefined) await this.afterStep(unit, "after_release");
    } finally {
      // On failure the entries stay in their outboxes and are relayed by the unit's redelivery.
      metrics.outboxBacklog.dec(entries);
    }
    // Only now may the unit's members be taken from the cache: their outboxes are empty.
    fillCache(cache, result);
    // A deadline this process already put in the index for the member is not written again.
    const changed = result.deadlines.filter(
      (d) => cache.indexed(d.userId, d.version) !== d.deadlineMs,
    );
    await this.store.indexDeadlines(changed);
    for (const d of changed) cache.markIndexed(d.userId, d.version, d.deadlineMs);
    for (const d of deadLetters) metrics.deadLetters.inc({ reason: d.reason });
  }
}

/**
 * A unit's records grouped by key, each member's left undecoded for its round (apply-members.ts):
 * a record whose value names another member is a key_mismatch dead letter either way, and so is
 * one with no key, returned apart.
 */
function groupByMember(records: ReadRecord[]): { works: MemberWork[]; unkeyed: ReadRecord[] } {
  const byUser = new Map<string, MemberWork>();
  const unkeyed: ReadRecord[] = [];
  for (const m of records) {
    if (m.key === null) {
      unkeyed.push(m);
      continue;
    }
    const userId = m.key.toString("utf8");
    const work = byUser.get(userId);
    if (work?.undecoded === undefined) byUser.set(userId, { userId, records: [], undecoded: [m] });
    else work.undecoded.push(m);
  }
  return { works: [...byUser.values()], unkeyed };
}
