// What the consumer's integration tests and benchmark share: the engine config from the shipped
// files, reading a topic back, waiting for a group to catch up, reading a member from Redis and
// the engine replay that says what Redis must hold. Test code only; not part of the package door.

import type { InputRecord } from "@creditflow/contracts";
import { type LedgerEntryRecord, usageRecordFromEvent } from "@creditflow/contracts";
import {
  apply,
  type EngineConfig,
  type EngineInput,
  type MemberState,
  openMember,
  type UsageEvent,
} from "@creditflow/engine";
import type { Admin, AvroCodec, KafkaConnection } from "@creditflow/kafka";
import { keySpace, MemberReader, MemberStore, type RedisClient } from "@creditflow/member-store";
import { memberSignUpMs } from "../src/apply-members.ts";

export { loadConfig } from "./shipped-config.ts";

export interface ReadRecord {
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
  partition: number;
  offset: string;
}

/**
 * Every record of a topic from the start, read with a throwaway group: returns once `expected`
 * records arrived (or, without expected, once nothing new came for idleMs), or at timeoutMs.
 */
export async function readTopic(
  conn: KafkaConnection,
  topic: string,
  opts: { expected?: number; idleMs?: number; timeoutMs?: number } = {},
): Promise<ReadRecord[]> {
  const consumer = conn.kafka.consumer({
    groupId: `read-${topic}-${Math.random().toString(36).slice(2)}`,
    maxWaitTimeInMs: 100,
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const out: ReadRecord[] = [];
  const idleMs = opts.idleMs ?? 3_000;
  await new Promise<void>((resolve, reject) => {
    const hard = setTimeout(resolve, opts.timeoutMs ?? 30_000);
    let idle = setTimeout(done, idleMs * 2);
    function done() {
      clearTimeout(hard);
      clearTimeout(idle);
      resolve();
    }
    consumer
      .run({
        eachMessage: async ({ message, partition }) => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(message.headers ?? {})) {
            if (v !== undefined) headers[k] = v.toString();
          }
          out.push({
            key: message.key?.toString() ?? null,
            value: message.value,
            headers,
            partition,
            offset: message.offset,
          });
          if (opts.expected !== undefined) {
            if (out.length >= opts.expected) done();
          } else {
            clearTimeout(idle);
            idle = setTimeout(done, idleMs);
          }
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return out;
}

/**
 * Records of the topics the group has not committed yet: per partition, from its committed offset
 * (or the partition's first offset, if later or nothing is committed) to its end.
 */
export async function groupLag(admin: Admin, groupId: string, topics: string[]): Promise<number> {
  let lag = 0;
  for (const topic of topics) {
    const ends = await admin.fetchTopicOffsets(topic);
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const at = new Map((committed?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
    for (const e of ends) {
      const c = Math.max(at.get(e.partition) ?? 0, Number(e.low));
      lag += Math.max(0, Number(e.high) - c);
    }
  }
  return lag;
}

/** Waits until the group's committed offsets reach the end of every partition of the topics. */
export async function waitCaughtUp(
  conn: KafkaConnection,
  groupId: string,
  topics: string[],
  timeoutMs = 60_000,
  pollMs = 250,
): Promise<void> {
  const admin = conn.kafka.admin();
  await admin.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const behind = await groupLag(admin, groupId, topics);
      if (behind === 0) return;
      if (Date.now() > deadline) throw new Error(`group ${groupId} still ${behind} records behind`);
      await new Promise((r) => setTimeout(r, pollMs));
    }
  } finally {
    await admin.disconnect();
  }
}

export interface StoredMember {
  version: number;
  stateText: string | null;
  state: MemberState | null;
  offsets: Record<string, string>;
  outboxLength: number;
}

/** A member as the member store's read model gives it, offsets as decimal text. */
export async function readMember(
  redis: RedisClient,
  keyPrefix: string,
  userId: string,
): Promise<StoredMember> {
  const m = await new MemberReader(redis, keySpace(keyPrefix)).member(userId);
  const offsets: Record<string, string> = {};
  for (const [field, offset] of m.offsets) offsets[field] = offset.toString();
  return {
    version: m.version,
    stateText: m.stateText,
    state: m.state,
    offsets,
    outboxLength: m.outboxEntries,
  };
}

/**
 * A state with its id memory as records without their horizon times (and without the memory's
 * clock): the consumer takes both from Kafka's timestamps, a replay without them from its clock.
 */
export function withoutHorizonTimes(state: MemberState): unknown {
  return { ...state, applied: state.applied.toArray().map(({ atSec: _, ...record }) => record) };
}

/** The engine over one member's inputs in order, opened the way the consumer opens a member. */
export function replayMember(
  userId: string,
  inputs: EngineInput[],
  config: EngineConfig,
  nowMs: number,
): MemberState | null {
  const ctx = { config, nowMs };
  let state: MemberState | null = null;
  for (const input of inputs) {
    if (state === null) state = openMember(userId, memberSignUpMs(input, nowMs), ctx).state;
    state = apply(state, input, ctx).state;
  }
  return state;
}

/** Ledger records of the ledger topic by user, deduplicated by entry id (first copy kept). */
export async function ledgerByUser(
  codec: AvroCodec,
  records: ReadRecord[],
): Promise<Map<string, LedgerEntryRecord[]>> {
  const seen = new Map<string, LedgerEntryRecord>();
  const byUser = new Map<string, LedgerEntryRecord[]>();
  for (const r of records) {
    const decoded = await codec.decode("ledger", r.value);
    if (!decoded.ok) throw new Error(`ledger record does not decode: ${decoded.detail}`);
    const e = decoded.value as LedgerEntryRecord;
    const first = seen.get(e.entryId);
    if (first !== undefined) {
      // A duplicate is allowed only as the same entry.
      if (JSON.stringify(first) !== JSON.stringify(e)) {
        throw new Error(`ledger entry ${e.entryId} appears with different content`);
      }
      continue;
    }
    seen.set(e.entryId, e);
    const list = byUser.get(e.userId) ?? [];
    list.push(e);
    byUser.set(e.userId, list);
  }
  return byUser;
}

export function sumMicros(entries: LedgerEntryRecord[] | undefined): number {
  return (entries ?? []).reduce((s, e) => s + e.amountMicros, 0);
}

/**
 * A chat usage record of `user` (event `<user>-e<n>`, task `<user>-t`) at offset 100 + n of
 * `topic`[`partition`], as the consumer's classifier hands it on: for tests that call
 * applyToMembers directly against Redis.
 */
export function usageInputRecord(
  user: string,
  n: number,
  nowMs: number,
  topic = "usage",
  partition = 3,
): InputRecord {
  const input: UsageEvent = {
    type: "usage",
    id: `${user}-e${n}`,
    userId: user,
    taskId: `${user}-t`,
    feature: "chat",
    taskKind: null,
    model: "kimi-k2",
    inputTokens: 2_000,
    outputTokens: 500,
    cachedInputTokens: 0,
    eventAtMs: nowMs - 10_000 + n,
  };
  const offset = BigInt(100 + n);
  return {
    topic,
    partition,
    offset,
    input,
    acceptedAtMs: null,
    raw: {
      topic,
      partition,
      offset: String(offset),
      key: Buffer.from(user),
      value: Buffer.from(JSON.stringify(usageRecordFromEvent(input, "t"))),
    },
  };
}

/**
 * A MemberStore under `keyPrefix` for tests whose outbox bytes go nowhere (nothing is relayed):
 * JSON stands in for the ledger's Avro encoding.
 */
export function storeWithoutRelay(redis: RedisClient, keyPrefix: string): MemberStore {
  return new MemberStore(redis, keySpace(keyPrefix), { membersPerRound: 100 }, (r) =>
    Buffer.from(JSON.stringify(r)),
  );
}
