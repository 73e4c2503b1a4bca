// Small fakes around the unit of work (src/unit-of-work.ts) for its unit tests: a relay and an
// offset commit that record what they acknowledged, in a journal shared with the in-memory store
// (memory-store.ts), each able to fail once on demand; a record decoder over JSON values, with
// records as Kafka hands them; and usage events of a known cost. Test code only; not part of the
// package door.

import {
  type CreditCommandRecord,
  type DecodedRecord,
  type LedgerEntryRecord,
  type ReadRecord,
  type RecordDecoder,
  usageRecordFromEvent,
} from "@creditflow/contracts";
import type { UsageEvent } from "@creditflow/engine";
import { type OutboxField, outboxValues } from "@creditflow/member-store";
import type { DeadLetter } from "../src/relay.ts";
import type { OffsetCommit, PartitionOffset, Relay } from "../src/unit-of-work.ts";
import { decodeEntry } from "./memory-store.ts";

const kafkaGone = (what: string) => new Error(`${what}: KafkaJSConnectionError ECONNREFUSED`);

/**
 * A Kafka fake that tells the journal it shares with the store what it acknowledged, and whose
 * next call fails instead when `failNext` asks, nothing of it acknowledged.
 */
abstract class JournalledKafka {
  /** What fails when `failNext` asks, for the error's message. */
  protected abstract readonly what: string;
  protected readonly journal: string[];
  private failure: Error | null = null;

  constructor(journal: string[]) {
    this.journal = journal;
  }

  failNext(error: Error = kafkaGone(this.what)): void {
    this.failure = error;
  }

  /** On the next tick: the failure `failNext` set (once), or `keep` and `step` in the journal. */
  protected async acknowledge(step: string, keep: () => void): Promise<void> {
    await Promise.resolve();
    const failure = this.failure;
    if (failure !== null) {
      this.failure = null;
      throw failure;
    }
    keep();
    this.journal.push(step);
  }
}

/** The ledger and dead-letter topics: what they acknowledged, in order. */
export class RecordingRelay extends JournalledKafka implements Relay {
  /** failNext: the next relay of ledger entries fails. */
  protected readonly what = "relay ledger entries";
  /** Ledger entries as relayed (a field relayed twice appears twice). */
  readonly ledger: LedgerEntryRecord[] = [];
  readonly deadLetters: DeadLetter[] = [];

  relayLedger(fields: OutboxField[]): Promise<void> {
    return this.acknowledge("relay", () => {
      for (const f of fields) for (const v of outboxValues(f)) this.ledger.push(decodeEntry(v));
    });
  }

  async sendDeadLetters(letters: DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    await Promise.resolve();
    for (const d of letters) this.deadLetters.push(d);
    this.journal.push("dead letters");
  }

  /** Each entry once, in the order first relayed: what a reader of the ledger keeps. */
  entriesOnce(): LedgerEntryRecord[] {
    const seen = new Set<string>();
    return this.ledger.filter((e) => !seen.has(e.entryId) && seen.add(e.entryId) !== undefined);
  }
}

/** The group's committed offsets, in order of commit. */
export class RecordingCommit extends JournalledKafka implements OffsetCommit {
  /** failNext: the next commit fails, nothing of it held. */
  protected readonly what = "commit";
  readonly committed: PartitionOffset[] = [];

  commit(offsets: PartitionOffset[]): Promise<void> {
    return this.acknowledge("commit", () => {
      for (const o of offsets) this.committed.push({ ...o });
    });
  }
}

/** Values as JSON of their Avro record; anything else does not decode. Counts what it decoded. */
export class JsonRecordDecoder implements RecordDecoder {
  decoded = 0;

  decodeKnown(_kind: unknown, bytes: Buffer | null): DecodedRecord {
    this.decoded++;
    try {
      return { ok: true, value: JSON.parse(bytes?.toString("utf8") ?? "") };
    } catch (error) {
      return { ok: false, reason: "undecodable", detail: (error as Error).message };
    }
  }

  async decode(kind: unknown, bytes: Buffer | null): Promise<DecodedRecord> {
    return this.decodeKnown(kind, bytes);
  }
}

/** A usage event of the default agent model costing exactly `micros` (a multiple of 10). */
export function usage(userId: string, id: string, atMs: number, micros: number): UsageEvent {
  return {
    type: "usage",
    id,
    userId,
    taskId: `task-${id}`,
    feature: "agent",
    taskKind: null,
    model: "kimi-k2",
    // 1,000 uncached input tokens of the default agent model cost 10,000 micros.
    inputTokens: micros / 10,
    outputTokens: 0,
    cachedInputTokens: 0,
    eventAtMs: atMs,
  };
}

/** A usage event as read from its topic at `offset`, keyed by its member. */
export function readUsage(offset: number, event: UsageEvent): ReadRecord {
  return {
    offset: String(offset),
    key: Buffer.from(event.userId),
    value: Buffer.from(JSON.stringify(usageRecordFromEvent(event, "unit-test"))),
    timestamp: String(event.eventAtMs),
  };
}

/** A command as read from its topic at `offset`, keyed by its member. */
export function readCommand(offset: number, command: CreditCommandRecord): ReadRecord {
  return {
    offset: String(offset),
    key: Buffer.from(command.userId),
    value: Buffer.from(JSON.stringify(command)),
    timestamp: String(command.issuedAt),
  };
}

/** A record whose value does not decode (a dead letter), or that has no key when `key` is null. */
export function readGarbage(offset: number, key: string | null): ReadRecord {
  return {
    offset: String(offset),
    key: key === null ? null : Buffer.from(key),
    value: Buffer.from("not a record"),
  };
}
