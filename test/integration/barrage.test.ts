// Goal: a seeded barrage of more than 10,000 malformed inputs, through Kafka and every HTTP
// endpoint, changes nothing it should not. Kafka: every malformed record on the usage and
// commands topics lands once in the dead-letter topic with the reason for its kind, its original
// key and bytes, and headers pointing at its source offset (a record too large for its dead
// letter to carry the headers under the broker's 1 MiB limit keeps a prefix of its bytes and a
// `cf-truncated` header; 400 letters of one member that exceed 1 MiB together go out whole);
// the consumer stays up and healthy;
// the valid records mixed in at random positions are applied exactly (Redis equals the engine
// over them, each member's ledger sums to the balance, no ledger entry comes from a bad record).
// HTTP: every bad request to the ingest and to every API route (the route list is read from the
// OpenAPI document; a route the barrage does not know fails the test) is a 4xx with the
// `{ error: { code, field, message } }` body naming the field; the valid requests interleaved are
// answered 2xx and reach Kafka exactly once; both apps still answer at the end. The API's rate
// limits are raised for the barrage: any 429 here is a failure (api.test.ts tests the limiter).
// Replay a run with CF_BARRAGE_SEED=<the seed printed at the start>.

import { randomBytes, randomInt } from "node:crypto";
import { type Api, buildApi } from "@creditflow/api";
import type { RunningConsumer } from "@creditflow/consumer";
import type { DeadLetterReason } from "@creditflow/contracts";
import {
  type CreditCommandRecord,
  commandFromRecord,
  type LedgerEntryRecord,
  recordFromCommand,
  topicNames,
  type UsageEventRecord,
  UsageInputSchema,
  usageEventFromRecord,
} from "@creditflow/contracts";
import {
  type CreditCommand,
  DAY_MS,
  type EngineInput,
  FEATURES,
  HOUR_MS,
  ledgerBalanceMicros,
  MAX_TIME_MS,
} from "@creditflow/engine";
import { buildIngest, type Ingest } from "@creditflow/ingest";
import { type Random, seededRandom } from "@creditflow/loadgen";
import { AvroCodec, connectKafka, ensureTopics } from "@creditflow/producer";
import { Redis } from "ioredis";
import { SignJWT } from "jose";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildMember,
  memberToken,
  usage,
  writeMember,
} from "../../services/api/testing/harness.ts";
import {
  ledgerByUser,
  loadConfig,
  type ReadRecord,
  readMember,
  readTopic,
  replayMember,
  startTestConsumer,
  sumMicros,
  waitCaughtUp,
  withoutHorizonTimes,
} from "../../services/consumer/testing/harness.ts";
import { isolation, stack } from "../support/stack.ts";

const SEED = Number(process.env.CF_BARRAGE_SEED ?? randomInt(2 ** 31));
console.log(`barrage seed ${SEED} (replay: CF_BARRAGE_SEED=${SEED})`);

const iso = isolation(import.meta.url);
const urls = stack();
const topics = topicNames(`t_${iso.id}`);
const config = loadConfig();
const conn = connectKafka(urls.kafkaBrokers, `test-${iso.id}`);
const groupId = iso.group("consumer");
/** Every clock (consumer, API) is pinned here, so the engine replay sees the same times. */
// Now (to the minute): Kafka stamps records with their acceptance time, and the duplicate
// horizon refuses events older than 24 hours by it.
const NOW_MS = Math.floor(Date.now() / 60_000) * 60_000;
const JWT_SECRET = randomBytes(32).toString("hex");
const SERVICE = `svc-${randomBytes(16).toString("hex")}`;
const ADMIN = `adm-${randomBytes(16).toString("hex")}`;
const INGEST = `ing-${randomBytes(16).toString("hex")}`;
/** Header on every barrage record; the consumer copies it onto the dead letter. */
const ID_HEADER = "bx-id";
const K_USERS = Array.from({ length: 24 }, (_, i) => `ku${i}`);
/** API readers (written to Redis), admin-command members, ingest members. */
const R_USERS = ["ar0", "ar1", "ar2", "ar3"];
const A_USERS = Array.from({ length: 6 }, (_, i) => `au${i}`);
const H_USERS = Array.from({ length: 6 }, (_, i) => `hu${i}`);

/** Inputs sent per kind, printed at the end. */
const tally = new Map<string, number>();
const count = (kind: string) => tally.set(kind, (tally.get(kind) ?? 0) + 1);

type Chooser = ReturnType<typeof chooser>;
function chooser(random: Random) {
  const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  /** A key of `table` drawn in proportion to its `w`. */
  const weighted = <K extends string>(table: Record<K, { w: number }>): K => {
    const entries = Object.entries(table) as [K, { w: number }][];
    let r = random() * entries.reduce((s, [, v]) => s + v.w, 0);
    for (const [k, v] of entries) {
      r -= v.w;
      if (r < 0) return k;
    }
    return entries[entries.length - 1]![0];
  };
  const bytes = (n: number) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = int(0, 255);
    return b;
  };
  const text = (n: number) =>
    Array.from({ length: n }, () => String.fromCharCode(int(0x21, 0x7e))).join("");
  return { random, int, pick, weighted, bytes, text };
}

/** Avro by hand, for values avsc refuses to write: a long (zigzag varint) and a string. */
function avroLong(n: bigint): Buffer {
  let z = (n << 1n) ^ (n >> 63n);
  const out: number[] = [];
  for (; z >= 0x80n; z >>= 7n) out.push(Number((z & 0x7fn) | 0x80n));
  out.push(Number(z));
  return Buffer.from(out);
}
const avroString = (s: string) =>
  Buffer.concat([avroLong(BigInt(Buffer.byteLength(s))), Buffer.from(s)]);
const frame = (schemaId: number, body: Buffer[]) => {
  const h = Buffer.alloc(5);
  h.writeInt32BE(schemaId, 1);
  return Buffer.concat([h, ...body]);
};

let consumer: RunningConsumer;
let codec: AvroCodec;
let redis: Redis;
let ingest: Ingest;
let api: Api;

async function topicSize(topic: string): Promise<number> {
  const admin = conn.kafka.admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).reduce((s, o) => s + Number(o.high), 0);
  } finally {
    await admin.disconnect();
  }
}

/** Every record of a topic, checked complete against its high-water marks. */
async function readAll(topic: string): Promise<ReadRecord[]> {
  const expected = await topicSize(topic);
  if (expected === 0) return [];
  const records = await readTopic(conn, topic, { expected, timeoutMs: 30_000 });
  expect(records.length, `records read from ${topic}`).toBe(expected);
  return records;
}

async function consumerHealthy(): Promise<void> {
  const health = await fetch(`http://127.0.0.1:${consumer.metricsPort}/healthz`);
  expect(health.status).toBe(200);
}

beforeAll(async () => {
  await ensureTopics(conn, [topics.usage, topics.commands], 6);
  codec = new AvroCodec(urls.schemaRegistryUrl);
  await codec.register(topics, ["usage", "command", "ledger"]);
  redis = new Redis(urls.redisUrl);
  consumer = await startTestConsumer(urls, {
    topics,
    keyPrefix: iso.keyPrefix,
    groupId,
    config,
    clock: () => NOW_MS,
    metricsPort: 0,
    sweeper: false,
    limits: { batchRecords: 500, sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1_000 },
    logger: pino({ level: "fatal" }),
  });
  await consumer.joined;
  ingest = await buildIngest({
    brokers: urls.kafkaBrokers,
    schemaRegistryUrl: urls.schemaRegistryUrl,
    rateCard: config.rateCard,
    topics,
    tokens: [{ name: "barrage-svc", secret: INGEST }],
    logger: false,
  });
  api = await buildApi({
    redisUrl: urls.redisUrl,
    brokers: urls.kafkaBrokers,
    schemaRegistryUrl: urls.schemaRegistryUrl,
    clickhouseUrl: urls.clickhouseUrl,
    // No history database: transactions answer from Redis (api.test.ts covers ClickHouse).
    clickhouseDatabase: `${iso.database}_none`,
    topics,
    keyPrefix: iso.keyPrefix,
    config,
    jwtSecret: JWT_SECRET,
    serviceTokens: [{ name: "barrage-svc", secret: SERVICE }],
    adminTokens: [{ name: "barrage-ops", secret: ADMIN }],
    clock: () => NOW_MS,
    logger: false,
    limits: {
      memberRequestsPerWindow: 1_000_000,
      serviceRequestsPerWindow: 1_000_000,
      adminRequestsPerWindow: 1_000_000,
      anonymousRequestsPerWindow: 1_000_000,
    },
  });
});

afterAll(async () => {
  await consumer?.stop();
  await ingest?.close();
  await api?.close();
  redis?.disconnect();
  const lines = [...tally].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `  ${k} ${v}`);
  console.log(`barrage seed ${SEED}: inputs by kind\n${lines.join("\n")}`);
});

// ---------------------------------------------------------------- Kafka

/** What the consumer must do with a record: dead-letter it, or apply it (or refuse it). */
type Outcome = DeadLetterReason | "applied" | "refused";

interface Planned {
  n: number;
  topic: string;
  kind: string;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
  outcome: Outcome;
  /** The engine input of an applied or refused record. */
  input?: EngineInput;
  /** Consecutive records with the same tag are produced together, in a request of their own. */
  request?: string;
  /** Its dead letter keeps only a prefix of the bytes, with `cf-truncated: <length>`. */
  truncated?: boolean;
}

/** A malformed value, what it must become, and its key when not the member's. */
type Fault = { value: Buffer | null; outcome: Outcome; key?: string | null };

/** Records sent to Kafka, by barrage id. */
const planned = new Map<number, Planned>();

function kafkaPlan(c: Chooser) {
  let n = 0;
  const models = (f: (typeof FEATURES)[number]) => Object.keys(config.rateCard.features[f].models);
  const usageRecord = (user: string, id: string): UsageEventRecord => {
    const feature = c.pick(FEATURES);
    return {
      eventId: id,
      userId: user,
      taskId: `${user}-t${c.int(0, 6)}`,
      feature,
      taskKind: feature === "agent" && c.random() < 0.5 ? "docs" : null,
      model: c.pick(models(feature)),
      inputTokens: c.int(0, 4_000),
      outputTokens: c.int(0, 800),
      cachedInputTokens: c.int(0, 1) * c.int(0, 2_000),
      occurredAt: NOW_MS - c.int(0, 120_000),
      service: "barrage",
    };
  };
  const at = NOW_MS - HOUR_MS;
  const grant = (user: string, id: string, amountMicros: number) =>
    ({
      type: "grant_bonus",
      id,
      userId: user,
      atMs: at,
      source: "trial",
      amountMicros,
      effectiveFromMs: at,
      expiresAtMs: NOW_MS + 7 * DAY_MS,
      priority: 0,
      recurrence: null,
    }) satisfies CreditCommand;
  // Copies: the codec encodes into a shared slab, and faults write into the bytes.
  const encUsage = (r: UsageEventRecord) => Buffer.from(codec.encode("usage", r));
  const encCommand = (cmd: CreditCommand) =>
    Buffer.from(codec.encode("command", recordFromCommand(cmd, "barrage")));
  const ledgerBytes = () =>
    Buffer.from(
      codec.encode("ledger", {
        ...{ entryId: `x${n}`, kind: "grant", userId: c.pick(K_USERS), grantId: null },
        ...{ tierId: null, grantClass: null, amountMicros: 5, balanceAfterMicros: 5 },
        ...{ detailMicros: 0, feature: null, taskId: null, eventAt: NOW_MS, processedAt: NOW_MS },
        ...{ sourceTopic: null, sourcePartition: null, sourceOffset: null },
      }),
    );

  const record = (topic: string, kind: string, key: string | null, rest: Partial<Planned>) => {
    const p: Planned = { n: n++, topic, kind, key, value: null, headers: {}, outcome: "applied" };
    Object.assign(p, rest, { key });
    p.headers[ID_HEADER] = String(p.n);
    // A producer cannot forge the consumer's headers: the dead letter carries the true ones.
    if (p.outcome !== "applied" && p.outcome !== "refused" && c.random() < 0.05) {
      Object.assign(p.headers, { "cf-reason": "forged", "cf-source-offset": "999999" });
    }
    planned.set(p.n, p);
    return p;
  };

  /** Faults of the frame and of Avro itself, the same on both topics. */
  const frameFaults = (good: () => Buffer, wrongType: () => Buffer) => ({
    random_bytes: {
      w: 10,
      make: (): Fault => {
        const b = c.bytes(c.int(1, 300));
        if (b[0] === 0) b[0] = c.int(1, 255);
        return { value: b, outcome: "bad_frame" };
      },
    },
    short_frame: {
      w: 2,
      make: (): Fault => ({
        value: Buffer.from([0, ...c.bytes(c.int(0, 3))]),
        outcome: "bad_frame",
      }),
    },
    wrong_magic_byte: {
      w: 8,
      make: (): Fault => {
        const b = good();
        b[0] = c.int(1, 255);
        return { value: b, outcome: "bad_frame" };
      },
    },
    bad_schema_id: {
      w: 3,
      make: (): Fault => {
        const b = good();
        b.writeInt32BE(-c.int(0, 2 ** 31 - 1), 1);
        return { value: b, outcome: "bad_frame" };
      },
    },
    unknown_schema_id: {
      w: 3,
      make: (): Fault => {
        const b = good();
        b.writeInt32BE(c.int(2_000_000_000, 2 ** 31 - 1), 1);
        return { value: b, outcome: "unknown_schema" };
      },
    },
    truncated_avro: {
      w: 10,
      make: (): Fault => {
        const b = good();
        return { value: b.subarray(0, c.int(5, b.length - 1)), outcome: "undecodable" };
      },
    },
    trailing_bytes: {
      w: 4,
      make: (): Fault => ({
        value: Buffer.concat([good(), c.bytes(c.int(1, 20))]),
        outcome: "undecodable",
      }),
    },
    wrong_record_type: {
      w: 6,
      make: (): Fault => ({ value: wrongType(), outcome: "undecodable" }),
    },
    null_value: {
      w: 3,
      make: (): Fault => ({ value: null, outcome: "bad_frame", key: c.pick([undefined, null]) }),
    },
  });

  const badUsage = (): Planned => {
    const user = c.pick(K_USERS);
    const base = () => usageRecord(user, `kb-${n}`);
    const enc = (
      over: Partial<UsageEventRecord>,
      outcome: Outcome,
      key?: string | null,
    ): Fault => ({
      value: encUsage({ ...base(), ...over }),
      outcome,
      key,
    });
    const huge = () => "h".repeat(c.int(8_000, 40_000));
    const table = {
      ...frameFaults(
        () => encUsage(base()),
        () => (c.random() < 0.5 ? encCommand(grant(user, `kb-${n}`, 1_000)) : ledgerBytes()),
      ),
      negative_tokens: {
        w: 6,
        make: () =>
          enc(
            { [c.pick(["inputTokens", "outputTokens", "cachedInputTokens"])]: -c.int(1, 1e9) },
            "invalid_field",
          ),
      },
      too_many_tokens: {
        w: 3,
        make: () => enc({ inputTokens: c.int(1e8 + 1, 2 ** 40) }, "invalid_field"),
      },
      // A long that does not fit a double: avsc refuses to read it.
      unsafe_long: {
        w: 2,
        make: (): Fault => {
          const r = base();
          const strings = [r.eventId, r.userId, r.taskId, "chat"].map(avroString);
          const tail = [avroString("kimi-k2"), avroLong(2n ** BigInt(c.int(54, 62))), avroLong(1n)];
          const end = [avroLong(0n), avroLong(BigInt(NOW_MS)), avroString("barrage")];
          const body = [...strings, avroLong(0n), ...tail, ...end];
          return { value: frame(codec.schemaId("usage"), body), outcome: "undecodable" };
        },
      },
      unknown_feature: {
        w: 6,
        make: () =>
          enc(
            { feature: c.pick(["teleport", "", "CHAT", "constructor", c.text(12)]) },
            "unknown_feature",
          ),
      },
      unknown_model: {
        w: 5,
        make: () =>
          enc(
            { feature: "chat", model: c.pick(["gpt-0", "image-1", "toString", c.text(8)]) },
            "unknown_model",
          ),
      },
      empty_user: {
        w: 4,
        make: () => enc({ userId: "" }, "missing_user", c.pick([user, "", null])),
      },
      bad_user_id: {
        w: 4,
        make: () => {
          const bad = c.pick(["has space", "ü-user", "x".repeat(129), "a/b", `${c.text(20)} `]);
          return enc({ userId: bad }, "missing_user", bad);
        },
      },
      bad_event_id: {
        w: 3,
        make: () =>
          enc({ eventId: c.pick(["has space", "", "é", "x".repeat(129)]) }, "invalid_field"),
      },
      huge_user_id: {
        w: 1,
        make: () => {
          const h = huge();
          return enc({ userId: h }, "missing_user", h);
        },
      },
      huge_feature: { w: 1, make: () => enc({ feature: huge() }, "unknown_feature") },
      huge_string: {
        w: 4,
        make: () =>
          enc({ [c.pick(["eventId", "taskId", "model", "service"])]: huge() }, "invalid_field"),
      },
      huge_task_kind: {
        w: 1,
        make: () => enc({ feature: "agent", model: "kimi-k2", taskKind: huge() }, "invalid_field"),
      },
      empty_service: { w: 1, make: () => enc({ service: "" }, "invalid_field") },
      negative_time: { w: 2, make: () => enc({ occurredAt: -c.int(1, 1e12) }, "invalid_field") },
      time_after_2200: {
        w: 2,
        make: () => enc({ occurredAt: MAX_TIME_MS + c.int(1, 1e12) }, "invalid_field"),
      },
      task_kind_mismatch: {
        w: 3,
        make: () =>
          enc(
            { feature: "chat", model: "kimi-k2", taskKind: c.pick(["docs", "swarm", "nope"]) },
            "invalid_field",
          ),
      },
      null_key: { w: 4, make: () => enc({}, "key_mismatch", null) },
      key_mismatch: {
        w: 4,
        make: () => enc({}, "key_mismatch", c.pick(K_USERS.filter((u) => u !== user))),
      },
    };
    const kind = c.weighted(table);
    const f = table[kind].make();
    return record(topics.usage, `usage.${kind}`, f.key === undefined ? user : f.key, f);
  };

  const badCommand = (): Planned => {
    const user = c.pick(K_USERS);
    const g = grant(user, `kb-${n}`, 1_000_000);
    const enc = (over: Partial<typeof g>, outcome: Outcome, key?: string | null): Fault => ({
      value: encCommand({ ...g, ...over }),
      outcome,
      key,
    });
    const table = {
      ...frameFaults(
        () => encCommand(g),
        () => (c.random() < 0.5 ? encUsage(usageRecord(user, `kb-${n}`)) : ledgerBytes()),
      ),
      empty_user: { w: 6, make: () => enc({ userId: "" }, "missing_user", c.pick([user, null])) },
      bad_user_id: {
        w: 6,
        make: () => {
          const bad = c.pick(["has space", "ü", "x".repeat(c.int(129, 300)), "a/b"]);
          return enc({ userId: bad }, "missing_user", bad);
        },
      },
      bad_command_id: {
        w: 5,
        make: () => enc({ id: c.pick(["has space", "x".repeat(129), "é", ""]) }, "invalid_field"),
      },
      // A grant whose issuedAt does not fit a double.
      unsafe_long: {
        w: 3,
        make: (): Fault => {
          const head = [avroString(g.id), avroString(user), avroLong(2n ** BigInt(c.int(54, 62)))];
          // issuedBy, union branch GrantBonus, source trial, amount, from, to, priority, two nulls
          const rest = [avroString("barrage"), avroLong(0n), avroLong(0n), avroLong(1_000n)];
          const times = [avroLong(BigInt(NOW_MS)), avroLong(BigInt(NOW_MS + DAY_MS))];
          const body = [...head, ...rest, ...times, avroLong(0n), avroLong(0n), avroLong(0n)];
          return { value: frame(codec.schemaId("command"), body), outcome: "undecodable" };
        },
      },
      null_key: { w: 5, make: () => enc({}, "key_mismatch", null) },
      key_mismatch: {
        w: 5,
        make: () => enc({}, "key_mismatch", c.pick(K_USERS.filter((u) => u !== user))),
      },
    };
    const kind = c.weighted(table);
    const f = table[kind].make();
    return record(topics.commands, `commands.${kind}`, f.key === undefined ? user : f.key, f);
  };

  /** Well-formed commands the engine refuses naming the field: applied as refusals, no effect. */
  const refusedCommand = (): Planned => {
    const user = c.pick(K_USERS);
    const head = { id: `kr-${n}`, userId: user, atMs: at };
    const g = grant(user, head.id, 1_000_000);
    const table: Record<string, { w: number; make: () => CreditCommand }> = {
      negative_grant: { w: 1, make: () => ({ ...g, amountMicros: -c.int(1, 1e9) }) },
      grant_ends_before_start: { w: 1, make: () => ({ ...g, expiresAtMs: at - c.int(0, DAY_MS) }) },
      unknown_tier: {
        w: 1,
        make: () => ({
          ...head,
          type: "subscription_start",
          tierId: c.pick(["gold", "", "constructor"]),
          billing: "monthly",
        }),
      },
      unknown_legacy_quota: {
        w: 1,
        make: () => ({
          ...head,
          type: "migrate_legacy",
          unusedUses: { [c.pick(["teleport", "constructor", "toString"])]: 3 },
        }),
      },
      negative_legacy_uses: {
        w: 1,
        make: () => ({ ...head, type: "migrate_legacy", unusedUses: { ppt: -c.int(1, 100) } }),
      },
      zero_adjustment: {
        w: 1,
        make: () => ({ ...head, type: "adjust", amountMicros: 0, expiresAtMs: null, reason: "x" }),
      },
      revoke_unknown_grant: {
        w: 1,
        make: () => ({ ...head, type: "revoke_grant", grantId: `nope-${n}` }),
      },
    };
    const kind = c.weighted(table);
    const value = encCommand(table[kind]!.make());
    // The engine sees the command as the consumer decodes it (Avro maps, unions).
    const decoded = codec.decodeKnown("command", value) as { value: CreditCommandRecord };
    const input = commandFromRecord(decoded.value);
    return record(topics.commands, `commands.refused.${kind}`, user, {
      value,
      outcome: "refused",
      input,
    });
  };

  // Phase A, the commands topic: each member gets a trial, a third of them a subscription too.
  const validCommands: Planned[] = [];
  for (const [i, user] of K_USERS.entries()) {
    const cmds: CreditCommand[] = [grant(user, `kv-${user}-trial`, c.int(1, 5) * 1_000_000)];
    if (i % 3 === 0) {
      const sub = { id: `kv-${user}-sub`, userId: user, atMs: at, tierId: "plus" };
      cmds.push({ ...sub, type: "subscription_start", billing: "monthly" });
    }
    for (const input of cmds) {
      validCommands.push(
        record(topics.commands, "commands.valid", user, { value: encCommand(input), input }),
      );
    }
  }
  const commandFaults = Array.from({ length: 1_100 }, badCommand);
  for (let i = 0; i < 120; i++) commandFaults.push(refusedCommand());

  // Phase B, the usage topic: valid events (some sent twice: debited once) among the faults.
  const validUsage: Planned[] = [];
  for (let i = 0; i < 1_000; i++) {
    const user = c.pick(K_USERS);
    const r = usageRecord(user, `kv-${user}-e${i}`);
    const rest = { value: encUsage(r), input: usageEventFromRecord(r) };
    validUsage.push(record(topics.usage, "usage.valid", user, rest));
    if (c.random() < 0.05) validUsage.push(record(topics.usage, "usage.valid_repeat", user, rest));
  }
  const usageFaults = Array.from({ length: 3_800 }, badUsage);
  const phaseB = interleave(c.random, validUsage, usageFaults);

  // Dead letters at the broker's 1 MiB limit: one record just under it, alone in its request
  // (its letter cannot add the headers and stay under it), and 400 of one member in one request
  // (their letters, each with its headers, pass 1 MiB together). Random bytes: bad frames.
  const noise = (size: number) => {
    const b = c.bytes(size);
    if (b[0] === 0) b[0] = c.int(1, 255);
    return b;
  };
  const huge = record(topics.usage, "usage.random_bytes_1mib", c.pick(K_USERS), {
    value: noise(1_048_000),
    outcome: "bad_frame",
    request: "1mib",
    truncated: true,
  });
  const manyUser = c.pick(K_USERS);
  const many = Array.from({ length: 400 }, () =>
    record(topics.usage, "usage.random_bytes_400", manyUser, {
      value: noise(2_550),
      outcome: "bad_frame",
      request: "400",
    }),
  );
  // The single record first: the group spliced in after it cannot be split by it.
  for (const group of [[huge], many]) phaseB.splice(c.int(0, phaseB.length), 0, ...group);
  return { phaseA: interleave(c.random, validCommands, commandFaults), phaseB };
}

/** A uniformly random merge of two lists that keeps each list's own order. */
function interleave<T>(random: Random, a: T[], b: T[]): T[] {
  const out: T[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (random() * (a.length - i + b.length - j) < a.length - i) out.push(a[i++]!);
    else out.push(b[j++]!);
  }
  return out;
}

/**
 * Sends in order, in a few large produce requests (each under the broker's 1 MiB default); the
 * records of one `request` tag in a request of their own.
 */
async function produce(records: Planned[]): Promise<void> {
  const producer = conn.kafka.producer();
  await producer.connect();
  try {
    for (let i = 0; i < records.length; ) {
      const batch: Planned[] = [];
      const tag = records[i]!.request;
      for (let bytes = 0; i < records.length && records[i]!.request === tag; i++) {
        if (tag === undefined && bytes >= 600_000) break;
        batch.push(records[i]!);
        bytes += (records[i]!.value?.length ?? 0) + (records[i]!.key?.length ?? 0) + 100;
      }
      const messages = batch.map((p) => ({ key: p.key, value: p.value, headers: p.headers }));
      await producer.send({ topic: batch[0]!.topic, acks: -1, messages });
    }
  } finally {
    await producer.disconnect();
  }
}

let kafkaFaultCount = 0;

describe("bad-input barrage through Kafka", () => {
  it("dead-letters every malformed record once with its reason; applies the valid ones exactly", async () => {
    const { phaseA, phaseB } = kafkaPlan(chooser(seededRandom(SEED)));
    const all = [...phaseA, ...phaseB];
    for (const p of all) count(`kafka.${p.kind}`);
    const isApplied = (p: Planned) => p.outcome === "applied" || p.outcome === "refused";
    const faults = all.filter((p) => !isApplied(p));
    kafkaFaultCount = faults.length;

    // Commands first, then usage: one member's commands and usage sit on two topics the
    // consumer reads independently, so the test orders them itself.
    await produce(phaseA);
    await waitCaughtUp(conn, groupId, [topics.commands], 60_000);
    await consumerHealthy();
    await produce(phaseB);
    await waitCaughtUp(conn, groupId, [topics.usage, topics.commands], 60_000);
    await consumerHealthy();

    // Where each barrage record landed, read back from the source topics.
    const at = new Map<string, number>();
    for (const topic of [topics.commands, topics.usage]) {
      for (const r of await readAll(topic)) {
        at.set(`${topic}/${r.partition}/${r.offset}`, Number(r.headers[ID_HEADER]));
      }
    }
    expect(at.size).toBe(all.length);

    // Exactly the malformed records are in the dead-letter topic, each once, as sent.
    const letters = await readAll(topics.deadLetters);
    const problems: string[] = [];
    const seen = new Set<number>();
    const hex = (b: Buffer | null) => (b === null ? null : b.toString("hex"));
    for (const l of letters) {
      const n = Number(l.headers[ID_HEADER]);
      const p = planned.get(n);
      if (p === undefined) {
        problems.push(`dead letter without a barrage id: ${JSON.stringify(l.headers)}`);
        continue;
      }
      if (seen.has(n)) problems.push(`${p.kind} #${n} dead-lettered twice`);
      seen.add(n);
      const h = l.headers;
      // A cut letter keeps a prefix of the record: at least half of it, not all of it.
      const prefix =
        p.truncated === true &&
        l.value !== null &&
        p.value !== null &&
        l.value.length >= p.value.length / 2 &&
        l.value.length < p.value.length &&
        l.value.equals(p.value.subarray(0, l.value.length));
      const got = {
        reason: h["cf-reason"],
        source: at.get(
          `${h["cf-source-topic"]}/${h["cf-source-partition"]}/${h["cf-source-offset"]}`,
        ),
        key: l.key,
        value: prefix ? `prefix of ${l.value?.length} bytes` : hex(l.value),
        truncated: h["cf-truncated"] ?? null,
        detail: (h["cf-detail"] ?? "").length > 0,
      };
      const want = {
        reason: p.outcome,
        source: n,
        key: p.key,
        value: p.truncated ? `prefix of ${l.value?.length} bytes` : hex(p.value),
        truncated: p.truncated ? String(p.value?.length) : null,
        detail: true,
      };
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        const short = (o: typeof got) => JSON.stringify(o).replace(/[0-9a-fh]{60,}/g, "…");
        problems.push(
          `${p.kind} #${n}: got ${short(got)}, want ${short(want)} (${h["cf-detail"]?.slice(0, 200)})`,
        );
      }
    }
    for (const p of faults)
      if (!seen.has(p.n)) problems.push(`${p.kind} #${p.n} not dead-lettered (want ${p.outcome})`);
    expect(problems.slice(0, 20)).toEqual([]);
    expect(letters.length).toBe(faults.length);
    // The near-limit records are there: one letter cut, the other 400 of one member whole.
    const kindOf = (l: ReadRecord) => planned.get(Number(l.headers[ID_HEADER]))?.kind;
    const cut = letters.filter((l) => l.headers["cf-truncated"] !== undefined);
    expect(cut.map(kindOf)).toEqual(["usage.random_bytes_1mib"]);
    expect(letters.filter((l) => kindOf(l) === "usage.random_bytes_400").length).toBe(400);

    // The consumer counted them by reason.
    const metrics = await fetch(`http://127.0.0.1:${consumer.metricsPort}/metrics`).then((r) =>
      r.text(),
    );
    const byReason = new Map<string, number>();
    for (const p of faults) byReason.set(p.outcome, (byReason.get(p.outcome) ?? 0) + 1);
    for (const [reason, n] of byReason) {
      expect(metrics).toContain(`cf_consumer_dead_letters_total{reason="${reason}"} ${n}`);
    }

    // The valid records, and the refused commands (they change nothing but the id memory), are
    // applied exactly as the engine applies them in topic order; the ledger sums to the balance.
    const ledgerRecords = await readAll(topics.ledger);
    const ledger = await ledgerByUser(codec, ledgerRecords);
    for (const user of K_USERS) {
      const mine = all.filter((p) => isApplied(p) && p.key === user);
      const expected = replayMember(
        user,
        mine.map((p) => p.input!),
        config,
        NOW_MS,
      )!;
      const stored = await readMember(redis, iso.keyPrefix, user);
      expect(withoutHorizonTimes(stored.state!), user).toEqual(withoutHorizonTimes(expected));
      expect(stored.outboxLength).toBe(0);
      const validOnly = mine.filter((p) => p.outcome === "applied").map((p) => p.input!);
      const balance = ledgerBalanceMicros(stored.state!);
      expect(balance, user).toBe(
        ledgerBalanceMicros(replayMember(user, validOnly, config, NOW_MS)!),
      );
      expect(sumMicros(ledger.get(user)), user).toBe(balance);
    }
    // No ledger entry comes from a malformed or a refused record (a refused command may open its
    // member: those entries are the opening's, not the command's), and none for another member.
    for (const r of ledgerRecords) {
      const e = ((await codec.decode("ledger", r.value)) as { value: LedgerEntryRecord }).value;
      expect(K_USERS).toContain(e.userId);
      const cause = e.entryId.includes("#") ? e.entryId.slice(0, e.entryId.lastIndexOf("#")) : null;
      if (cause !== null) expect(cause, e.entryId).toMatch(/^kv-/);
      if (e.sourceTopic === null) continue;
      const n = at.get(`${e.sourceTopic}/${e.sourcePartition}/${e.sourceOffset}`)!;
      expect(isApplied(planned.get(n)!), `ledger entry ${e.entryId} from record #${n}`).toBe(true);
    }
    await consumerHealthy();
  });
});

// ---------------------------------------------------------------- HTTP

interface HttpCase {
  target: "ingest" | "api";
  kind: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  /** The body as sent (already serialized). */
  payload?: string;
  /** A refusal: its status, and its code(s) and field where they are certain. */
  want?: { status: number; code?: string | string[]; field?: string };
  /** A valid request: its status and the ids it sends to Kafka. */
  valid?: { status: number; sent: string[] };
}

type Json = Record<string, unknown>;
type Schema = {
  type?: string | string[];
  anyOf?: Schema[];
  properties?: Record<string, Schema>;
  required?: string[];
};
type OpenApi = {
  paths: Record<
    string,
    Record<string, { requestBody?: { content: Record<string, { schema: Schema }> } }>
  >;
};

/** The JSON types a schema admits ("integer": whole numbers only). */
function jsonTypes(s: Schema): Set<string> {
  const out = new Set<string>([s.type ?? []].flat());
  for (const b of s.anyOf ?? []) for (const t of jsonTypes(b)) out.add(t);
  return out;
}

/** A value of a JSON type the schema does not admit. */
function wrongTypeValue(c: Chooser, s: Schema): unknown {
  const types = jsonTypes(s);
  const admitted = (t: string) =>
    types.has(t) || ((t === "integer" || t === "float") && types.has("number"));
  const candidates: [string, unknown][] = [
    ["string", `s${c.text(4)}`],
    ["integer", c.int(-5, 5)],
    ["float", c.int(-50, 50) + 0.5],
    ["boolean", c.random() < 0.5],
    ["null", null],
    ["array", [c.int(0, 9)]],
    ["object", { a: c.int(0, 9) }],
  ];
  return c.pick(candidates.filter(([t]) => !admitted(t)))[1];
}

/** JSON with number tokens JSON.stringify cannot write (1e400 parses as Infinity). */
const RAW = "\u0000raw:";
const serialize = (body: unknown) => JSON.stringify(body).replace(/"\\u0000raw:([^"]*)"/g, "$1");
const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");

/** Member credentials a client could present, good and bad, made once. */
async function credentials() {
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const key = new TextEncoder().encode(JWT_SECRET);
  const valid = await memberToken("ar0", { secret: JWT_SECRET });
  const [h, , s] = valid.split(".");
  const sign = (claims: object, alg = "HS256") =>
    new SignJWT({ ...claims }).setProtectedHeader({ alg }).sign(key);
  return {
    members: await Promise.all(R_USERS.map((u) => memberToken(u, { secret: JWT_SECRET }))),
    expired: await memberToken("ar0", { secret: JWT_SECRET, expiresInSeconds: -60 }),
    invalid: [
      await memberToken("ar0", { secret: randomBytes(32).toString("hex") }),
      `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "ar0", exp })}.`,
      `${b64({ alg: "none" })}.${b64({ sub: "ar0", exp })}.${s}`,
      `${h}.${b64({ sub: "ar1", exp })}.${s}`, // tampered payload, original signature
      await sign({ sub: "ar0", exp }, "HS512"),
      await sign({ sub: "ar0" }), // no exp
      await sign({ exp }), // no sub
      await sign({ sub: "has space", exp }),
      await sign({ sub: "ar0", exp, nbf: exp }),
      `${valid.slice(0, -2)}${valid.endsWith("AA") ? "BB" : "AA"}`, // another signature
    ],
    /** Member tokens that claim more than a member is: still members. */
    pretenders: [
      await sign({ sub: "barrage-ops", exp, kind: "admin", role: "admin", scope: "admin" }),
      await sign({ sub: "barrage-svc", exp, kind: "service" }),
    ],
  };
}

type Creds = Awaited<ReturnType<typeof credentials>>;
type Kind = "member" | "service" | "admin";

interface RouteDef {
  method: "GET" | "POST";
  path: (userId: string, grantId: string) => string;
  kinds: Kind[];
  params: ("userId" | "grantId")[];
  /** The member the request is about; a member credential is that member's. */
  user: () => string;
  body?: () => Json;
  /** Values the schema admits and the handler refuses: [mutation, field it names]. */
  semantic?: [(b: Json) => void, string][];
}

function apiRoutes(c: Chooser, nextId: () => number): Record<string, RouteDef> {
  const iso = (ms: number) => new Date(ms).toISOString();
  const future = () => iso(NOW_MS + c.int(1, 60) * DAY_MS);
  const inf = () => `${RAW}${c.pick(["1e400", "-1e400"])}`;
  const reader = (path: (u: string) => string, params: RouteDef["params"], kinds: Kind[]) =>
    ({ method: "GET", path, kinds, params, user: () => c.pick(R_USERS) }) satisfies RouteDef;
  const admin = (
    path: string,
    body: () => Json,
    semantic: [(b: Json) => void, string][] = [],
  ): RouteDef => ({
    method: "POST",
    path: (u, g) => `/v1/admin/members/${u}/${path.replace("{grantId}", g)}`,
    kinds: ["admin"],
    params: path.includes("{grantId}") ? ["userId", "grantId"] : ["userId"],
    user: () => c.pick(A_USERS),
    body: () => ({ commandId: `ab-${nextId()}`, ...body() }),
    semantic: [
      [(b) => (b.commandId = c.pick(["has space", "x".repeat(129), "é", ""])), "commandId"],
      [(b) => (b.issuedAt = c.pick(["yesterday", "2026-13-01T00:00:00Z", ""])), "issuedAt"],
      ...semantic,
    ],
  });
  const tiers = () => c.pick(["plus", "pro", "ultra"]);
  return {
    "GET /v1/me/balance": { ...reader(() => "/v1/me/balance", [], ["member"]), user: () => "ar0" },
    "GET /v1/me/transactions": {
      ...reader(() => "/v1/me/transactions", [], ["member"]),
      user: () => "ar0",
    },
    "GET /v1/members/{userId}/balance": reader(
      (u) => `/v1/members/${u}/balance`,
      ["userId"],
      ["member", "service", "admin"],
    ),
    "GET /v1/members/{userId}/transactions": reader(
      (u) => `/v1/members/${u}/transactions`,
      ["userId"],
      ["member", "service", "admin"],
    ),
    "POST /v1/admission": {
      method: "POST",
      path: () => "/v1/admission",
      kinds: ["service"],
      params: [],
      user: () => "ar0",
      body: () => ({ userId: c.pick([...R_USERS, "someone-new"]), feature: c.pick(FEATURES) }),
      semantic: [
        [(b) => (b.userId = c.pick(["a b", "", "x".repeat(129)])), "userId"],
        [(b) => (b.feature = c.pick(["fax", "CHAT", ""])), "feature"],
        [(b) => (b.taskKind = c.pick(["nope", "", "SWARM"])), "taskKind"],
      ],
    },
    "POST /v1/admin/members/{userId}/bonus-grants": admin(
      "bonus-grants",
      () => ({ amountMicros: c.int(1, 50) * 100_000, expiresAt: future(), campaign: "barrage" }),
      [
        [(b) => (b.amountMicros = c.pick([-5, 0, 1.5, 1e13 + 1, "5", inf()])), "amountMicros"],
        [
          (b) => (b.expiresAt = c.pick(["tomorrow", iso(NOW_MS - DAY_MS), "2026-13-01T00:00:00Z"])),
          "expiresAt",
        ],
        [(b) => (b.effectiveFrom = iso(NOW_MS + 90 * DAY_MS)), "expiresAt"],
        [(b) => (b.source = c.pick(["gift", ""])), "source"],
        [(b) => (b.recurrence = c.pick(["2h", "P7D", ""])), "recurrence"],
        [(b) => (b.priority = c.pick([-1, 1.5, 1_000_001])), "priority"],
        [(b) => (b.campaign = c.pick(["", "c".repeat(129)])), "campaign"],
      ],
    ),
    "POST /v1/admin/members/{userId}/subscription": admin(
      "subscription",
      () => ({ tierId: tiers(), billing: c.pick(["monthly", "annual"]) }),
      [
        [(b) => (b.tierId = c.pick(["gold", "free", "", "constructor"])), "tierId"],
        [(b) => (b.billing = c.pick(["weekly", ""])), "billing"],
      ],
    ),
    "POST /v1/admin/members/{userId}/subscription/change": admin(
      "subscription/change",
      () => ({ tierId: tiers() }),
      [[(b) => (b.tierId = c.pick(["gold", "", "t".repeat(65), "__proto__"])), "tierId"]],
    ),
    "POST /v1/admin/members/{userId}/subscription/cancel": admin("subscription/cancel", () => ({})),
    "POST /v1/admin/members/{userId}/grants/{grantId}/revoke": admin(
      "grants/{grantId}/revoke",
      () => ({}),
    ),
    "POST /v1/admin/members/{userId}/adjustments": admin(
      "adjustments",
      () =>
        c.random() < 0.5
          ? { amountMicros: c.int(1, 9) * 100_000, expiresAt: future(), reason: "barrage" }
          : { amountMicros: -c.int(1, 9) * 1_000, reason: "barrage" },
      [
        [(b) => (b.amountMicros = c.pick([0, 1.5, 1e13 + 1, -1e13 - 1, inf()])), "amountMicros"],
        [
          (b) =>
            Object.assign(b, {
              amountMicros: 5,
              expiresAt: c.pick([undefined, null, iso(NOW_MS - 1)]),
            }),
          "expiresAt",
        ],
        [(b) => (b.reason = c.pick(["", "r".repeat(501)])), "reason"],
      ],
    ),
    "POST /v1/admin/members/{userId}/legacy-migration": admin(
      "legacy-migration",
      () => ({ unusedUses: { [c.pick(["ppt", "agent", "docs"])]: c.int(0, 20) } }),
      [
        [(b) => (b.unusedUses = {}), "unusedUses"],
        [(b) => (b.unusedUses = { fax: 3 }), "unusedUses.fax"],
        [
          (b) => (b.unusedUses = { ppt: c.pick([-1, 1.5, "3", null, 1_000_001]) }),
          "unusedUses.ppt",
        ],
        [(b) => (b.unusedUses = { constructor: 1 }), "unusedUses.constructor"],
        [(b) => (b.unusedUses = { toString: 2 }), "unusedUses.toString"],
      ],
    ),
  };
}

function httpPlan(c: Chooser, creds: Creds, openapi: OpenApi): HttpCase[] {
  let n = 0;
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
  const json = { "content-type": "application/json" };
  const credOf = (k: Kind, user = "ar0") =>
    bearer(
      k === "admin" ? ADMIN : k === "service" ? SERVICE : creds.members[R_USERS.indexOf(user)]!,
    );
  const routes = apiRoutes(c, () => n);

  // Every documented route has a place in the barrage; a new route fails here until it does.
  const documented = Object.entries(openapi.paths).flatMap(([p, ms]) =>
    Object.keys(ms).map((m) => `${m.toUpperCase()} ${p}`),
  );
  expect(documented.sort()).toEqual(Object.keys(routes).sort());
  const bodySchema = (key: string): Schema => {
    const [method, path] = key.split(" ") as [string, string];
    return openapi.paths[path]![method.toLowerCase()]!.requestBody!.content["application/json"]!
      .schema;
  };

  /** One API request, valid or with one thing wrong; null when the kind does not apply. */
  function apiCase(key: string): HttpCase | null {
    const r = routes[key]!;
    const user = r.user();
    const url = r.path(user, `g-${n}`);
    const own = c.pick(r.kinds);
    const auth = credOf(own, user);
    const body = r.body?.();
    const payload = body === undefined ? undefined : serialize(body);
    const headers = { ...auth, ...(r.method === "POST" ? json : {}) };
    const req = { target: "api" as const, method: r.method, url, headers, payload };
    const bad = (kind: string, want: HttpCase["want"], over: Partial<HttpCase> = {}) =>
      ({ ...req, kind: `api.${kind}`, want, ...over }) satisfies HttpCase;
    const withBody = (kind: string, text: string, want: HttpCase["want"]) =>
      bad(kind, want, { headers: { ...auth, ...json }, payload: text });
    const invalid = (field: string) => ({ status: 400, code: "invalid_request", field });
    const unauthorized = (code: string | string[]) => ({
      status: 401,
      code,
      field: "authorization",
    });
    const forbidden = { status: 403, code: "forbidden", field: "authorization" };
    const props = body === undefined ? {} : (bodySchema(key).properties ?? {});
    const table: Record<string, { w: number; make: () => HttpCase | null }> = {
      valid: {
        w: 6,
        make: () => {
          const commandId = body?.commandId === undefined ? null : `av-${n}`;
          if (commandId !== null) body!.commandId = commandId;
          const valid = {
            status: commandId === null ? 200 : 202,
            sent: commandId === null ? [] : [commandId],
          };
          return { ...req, kind: "api.valid", payload: body && serialize(body), valid };
        },
      },
      auth_missing: {
        w: 3,
        make: () => bad("auth_missing", unauthorized("unauthorized"), { headers: { ...json } }),
      },
      auth_scheme: {
        w: 3,
        make: () => {
          const value = c.pick([
            ...["Basic YWRtaW46YWRtaW4=", "Token abc", "Bearer", "Bearer ", "Bearer\t\t"],
            ...[`bearer ${ADMIN} extra`, ADMIN, `${ADMIN} Bearer`],
          ]);
          return bad("auth_scheme", unauthorized("unauthorized"), {
            headers: { ...json, authorization: value },
          });
        },
      },
      auth_garbage: {
        w: 4,
        make: () => {
          const token = c.pick([
            ...[c.text(c.int(1, 60)), `${ADMIN}x`, SERVICE.slice(0, -1), INGEST],
            ...[`a.b.${c.text(10).replace(/\W/g, "")}`, "x".repeat(8_000)],
          ]);
          return bad("auth_garbage", unauthorized(["unauthorized", "invalid_token"]), {
            headers: { ...json, ...bearer(token) },
          });
        },
      },
      auth_expired: {
        w: 2,
        make: () =>
          bad("auth_expired", unauthorized("token_expired"), {
            headers: { ...json, ...bearer(creds.expired) },
          }),
      },
      auth_invalid: {
        w: 8,
        make: () =>
          bad("auth_invalid", unauthorized("invalid_token"), {
            headers: { ...json, ...bearer(c.pick(creds.invalid)) },
          }),
      },
      auth_wrong_kind: {
        w: 5,
        make: () => {
          const others = (["member", "service", "admin"] as const).filter(
            (k) => !r.kinds.includes(k),
          );
          if (others.length === 0) return null;
          return bad("auth_wrong_kind", forbidden, {
            headers: { ...json, ...credOf(c.pick(others)) },
          });
        },
      },
      auth_pretender: {
        w: 2,
        make: () =>
          r.kinds.includes("member")
            ? null
            : bad("auth_pretender", forbidden, {
                headers: { ...json, ...bearer(c.pick(creds.pretenders)) },
              }),
      },
      wrong_method: {
        w: 2,
        make: () => {
          const method = c.pick(["PUT", "DELETE", "PATCH", r.method === "GET" ? "POST" : "GET"]);
          const want = { status: 404, code: "not_found", field: "" };
          return bad("wrong_method", want, {
            method,
            headers: { ...auth, ...json },
            payload: payload ?? "{}",
          });
        },
      },
      unknown_path: {
        w: 1,
        make: () =>
          bad(
            "unknown_path",
            { status: 404, code: "not_found", field: "" },
            {
              url: `${url}/${c.pick(["x", "..", "%00", "balance"])}`,
            },
          ),
      },
    };
    if (r.params.length > 0) {
      // With an admin or service credential: a member's would be asked about its own id first.
      const who = credOf(r.kinds.includes("admin") ? "admin" : "service");
      const at = (param: string, bad: string) =>
        param === "userId" ? r.path(bad, `g-${n}`) : r.path(user, bad);
      table.bad_param = {
        w: 5,
        make: () => {
          const param = c.pick(r.params);
          const value =
            param === "userId"
              ? c.pick([
                  "a%20b",
                  "x".repeat(129),
                  "%C3%BC",
                  "a%2Fb",
                  "%00",
                  "a%3Bb",
                  "y".repeat(c.int(129, 512)),
                ])
              : "g".repeat(c.int(257, 512));
          return bad("bad_param", invalid(param), {
            url: at(param, value),
            headers: { ...headers, ...who },
          });
        },
      };
      // What the router cannot read at all is refused before any schema, naming the path.
      table.bad_path = {
        w: 1,
        make: () => {
          const value = c.pick(["%E0%A4%A", "%", "%zz", "x".repeat(c.int(513, 3_000))]);
          const url = at(c.pick(r.params), value);
          return bad("bad_path", invalid("path"), { url, headers: { ...headers, ...who } });
        },
      };
    }
    if (r.kinds.includes("member") && r.params.includes("userId")) {
      table.other_member = {
        w: 5,
        make: () => {
          const other = c.pick(["ar1", "ar2", "ar3", "ghost", "au0", "barrage-ops"]);
          const want = { status: 403, code: "forbidden", field: "userId" };
          return bad("other_member", want, {
            url: r.path(other, ""),
            headers: credOf("member", "ar0"),
          });
        },
      };
    }
    if (body !== undefined) {
      const notJson = { status: 400, code: "invalid_json", field: "body" };
      Object.assign(table, {
        malformed_json: {
          w: 5,
          make: () => {
            const text = c.pick([
              ...[
                payload!.slice(0, c.int(1, payload!.length - 1)),
                `${payload},`,
                payload!.replace(":", ""),
              ],
              ...["{'a': 1}", "NaN", "[1,]", '{"a":1}}', "\u0000", '{"commandId": undefined}'],
            ]);
            return withBody("malformed_json", text, notJson);
          },
        },
        empty_body: { w: 2, make: () => withBody("empty_body", "", notJson) },
        wrong_content_type: {
          w: 4,
          make: () => {
            const type = c.pick([
              ...[
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
              ],
              ...[
                "application/xml",
                "application/octet-stream",
                "application/json-patch+json",
                "text/json",
              ],
            ]);
            const want = { status: 415, code: "unsupported_media_type" };
            return bad("wrong_content_type", want, { headers: { ...auth, "content-type": type } });
          },
        },
        oversized_body: {
          w: 1,
          make: () =>
            withBody("oversized_body", serialize({ ...body, pad: "p".repeat(70 * 1024) }), {
              status: 413,
              code: "body_too_large",
            }),
        },
        not_object: {
          w: 3,
          make: () =>
            withBody(
              "not_object",
              c.pick(["null", "[]", "[{}]", "42", '"text"', "true"]),
              invalid("body"),
            ),
        },
        missing_field: {
          w: 5,
          make: () => {
            const field = c.pick(bodySchema(key).required ?? []);
            const b = { ...body };
            delete b[field];
            return withBody("missing_field", serialize(b), invalid(field));
          },
        },
        unknown_field: {
          w: 5,
          make: () => {
            const field = c.pick(["extra", "userId", "type", "__proto__x", "amount", "isAdmin"]);
            if (field in props) return null;
            return withBody("unknown_field", serialize({ ...body, [field]: 1 }), invalid(field));
          },
        },
        wrong_type: {
          w: 10,
          make: () => {
            const field = c.pick(Object.keys(props));
            const b = { ...body, [field]: wrongTypeValue(c, props[field]!) };
            return withBody("wrong_type", serialize(b), invalid(field));
          },
        },
        huge_string: {
          w: 3,
          make: () => {
            const strings = Object.keys(props).filter((f) => jsonTypes(props[f]!).has("string"));
            if (strings.length === 0) return null;
            const field = c.pick(strings);
            const b = { ...body, [field]: "h".repeat(c.int(1_000, 50_000)) };
            return withBody("huge_string", serialize(b), invalid(field));
          },
        },
        semantic: {
          w: 12,
          make: () => {
            if (r.semantic === undefined) return null;
            const [mutate, field] = c.pick(r.semantic);
            const b = { ...body };
            mutate(b);
            const route = key.split("/").pop();
            return withBody(`semantic.${route}.${field}`, serialize(b), invalid(field));
          },
        },
        bad_auth_and_body: {
          w: 2,
          make: () =>
            bad("bad_auth_and_body", unauthorized("invalid_token"), {
              headers: { ...json, ...bearer(c.pick(creds.invalid)) },
              payload: c.pick(["{", "[]", "null"]),
            }),
        },
      });
    }
    return table[c.weighted(table)]!.make();
  }

  // ---- ingest
  const usageSchema = UsageInputSchema as unknown as Schema;
  const validEvent = (id: string): Json => {
    const feature = c.pick(FEATURES);
    const minutesAgo = NOW_MS - c.int(0, 60_000);
    const e: Json = {
      eventId: id,
      userId: c.pick(H_USERS),
      taskId: `t-${c.int(0, 9)}`,
      feature,
      model: c.pick(Object.keys(config.rateCard.features[feature].models)),
      inputTokens: c.int(0, 3_000),
      outputTokens: c.int(0, 500),
      occurredAt: c.random() < 0.5 ? minutesAgo : new Date(minutesAgo).toISOString(),
    };
    if (feature === "agent" && c.random() < 0.3) e.taskKind = "docs";
    if (c.random() < 0.2) e.cachedInputTokens = c.int(0, 100);
    if (c.random() < 0.2) e.service = "named-by-event";
    return e;
  };
  const tokens = () => c.pick(["inputTokens", "outputTokens", "cachedInputTokens"]);
  /** One thing wrong with an event: [fault, mutation returning the field it names]. */
  const eventFaults: Record<string, { w: number; make: (e: Json) => string }> = {
    missing_field: {
      w: 5,
      make: (e) => {
        const f = c.pick(usageSchema.required!);
        delete e[f];
        return f;
      },
    },
    unknown_field: {
      w: 4,
      make: (e) => {
        const f = c.pick(["extra", "cost", "user_id", "credits"]);
        e[f] = 1;
        return f;
      },
    },
    wrong_type: {
      w: 10,
      make: (e) => {
        const f = c.pick(Object.keys(usageSchema.properties!));
        e[f] = wrongTypeValue(c, usageSchema.properties![f]!);
        return f;
      },
    },
    negative_tokens: {
      w: 4,
      make: (e) => {
        const f = tokens();
        e[f] = -c.int(1, 1e9);
        return f;
      },
    },
    float_tokens: {
      w: 3,
      make: (e) => {
        const f = tokens();
        e[f] = c.int(0, 1000) + 0.25;
        return f;
      },
    },
    too_many_tokens: {
      w: 3,
      make: (e) => {
        const f = tokens();
        e[f] = c.int(1e8 + 1, 2 ** 52);
        return f;
      },
    },
    infinite_tokens: {
      w: 2,
      make: (e) => {
        const f = tokens();
        e[f] = `${RAW}${c.pick(["1e400", "-1e400"])}`;
        return f;
      },
    },
    bad_id: {
      w: 4,
      make: (e) => {
        const f = c.pick(["eventId", "userId", "taskId"]);
        e[f] = c.pick(["has space", "", "é", "x".repeat(129), "a/b", "<script>"]);
        return f;
      },
    },
    huge_string: {
      w: 4,
      make: (e) => {
        const f = c.pick([
          "eventId",
          "userId",
          "taskId",
          "feature",
          "model",
          "service",
          "taskKind",
        ]);
        e[f] = "h".repeat(c.int(1_000, 100_000));
        return f;
      },
    },
    unknown_feature: {
      w: 3,
      make: (e) => {
        e.feature = c.pick(["teleport", "", "CHAT", "constructor", "__proto__"]);
        return "feature";
      },
    },
    unknown_model: {
      w: 3,
      make: (e) =>
        Object.assign(e, { feature: "chat", model: c.pick(["gpt-0", "image-1", "toString"]) }) &&
        "model",
    },
    task_kind_mismatch: {
      w: 3,
      make: (e) =>
        Object.assign(
          e,
          c.random() < 0.5
            ? { feature: "chat", model: "kimi-k2", taskKind: "docs" }
            : { feature: "agent", model: "kimi-k2", taskKind: c.pick(["nope", "", "DOCS"]) },
        ) && "taskKind",
    },
    bad_time: {
      w: 5,
      make: (e) => {
        e.occurredAt = c.pick<unknown>([
          ...["yesterday", "2026-13-01T00:00:00Z", "2026-11-25 12:00:00", "", "x".repeat(41)],
          ...["0000-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "9999-12-31T23:59:59Z"],
          ...[-1, 1.5, MAX_TIME_MS + 1, Number.MAX_SAFE_INTEGER],
        ]);
        return "occurredAt";
      },
    },
  };

  function ingestCase(): HttpCase {
    const auth = bearer(INGEST);
    const req = {
      target: "ingest" as const,
      method: "POST",
      url: "/v1/usage",
      headers: { ...auth, ...json },
    };
    const bad = (
      kind: string,
      payload: string,
      want: HttpCase["want"],
      over: Partial<HttpCase> = {},
    ) => ({ ...req, kind: `ingest.${kind}`, payload, want, ...over }) satisfies HttpCase;
    const invalid = (field: string) => ({ status: 400, code: "invalid_input", field });
    const one = () => serialize(validEvent(`hb-${n}`));
    const batch = (size: number) =>
      Array.from({ length: size }, (_, i) => validEvent(`hb-${n}-${i}`));
    const table: Record<string, { w: number; make: () => HttpCase }> = {
      valid: {
        w: 6,
        make: () => {
          const events = Array.from({ length: c.random() < 0.5 ? 1 : c.int(1, 20) }, (_, i) =>
            validEvent(`hv-${n}-${i}`),
          );
          const body = events.length === 1 && c.random() < 0.5 ? events[0] : { events };
          const valid = { status: 202, sent: events.map((e) => String(e.eventId)) };
          return { ...req, kind: "ingest.valid", payload: serialize(body), valid };
        },
      },
      auth: {
        w: 8,
        make: () => {
          const value = c.pick([
            ...[undefined, "Basic x", `Bearer ${INGEST}x`, `Bearer ${ADMIN}`, `Bearer ${SERVICE}`],
            ...[`Bearer ${creds.members[0]}`, `Bearer ${c.text(30)}`, INGEST, "Bearer"],
          ]);
          const headers: Record<string, string> = { ...json };
          if (value !== undefined) headers.authorization = value;
          return bad(
            "auth",
            one(),
            { status: 401, code: "unauthorized", field: "authorization" },
            { headers },
          );
        },
      },
      wrong_content_type: {
        w: 4,
        make: () => {
          const type = c.pick([
            ...["text/plain", "application/x-www-form-urlencoded", "application/xml"],
            ...["application/octet-stream", "text/json"],
          ]);
          const want = { status: 415, code: "unsupported_media_type" };
          return bad("wrong_content_type", one(), want, {
            headers: { ...auth, "content-type": type },
          });
        },
      },
      malformed_json: {
        w: 5,
        make: () => {
          const text = one();
          const malformed = c.pick([
            ...[text.slice(0, c.int(1, text.length - 1)), `${text},`, "{'a': 1}", "NaN", "[1,]"],
            ...[
              `${text}}`,
              "\u0000",
              '{"__proto__": {"a": 1}}',
              '{"constructor": {"prototype": {}}}',
            ],
          ]);
          // The ingest names the whole body with an empty field (its errors.ts).
          return bad("malformed_json", malformed, { status: 400, code: "invalid_json", field: "" });
        },
      },
      empty_body: {
        w: 1,
        make: () => bad("empty_body", "", { status: 400, code: "invalid_json", field: "" }),
      },
      oversized_body: {
        w: 0.3,
        make: () =>
          bad(
            "oversized_body",
            serialize({ ...validEvent(`hb-${n}`), taskId: "x".repeat(1_100_000) }),
            {
              status: 413,
              code: "body_too_large",
            },
          ),
      },
      batch_too_large: {
        w: 0.3,
        make: () =>
          bad("batch_too_large", serialize({ events: batch(1_001) }), {
            status: 413,
            code: "batch_too_large",
            field: "events",
          }),
      },
      empty_events: {
        w: 1,
        make: () => bad("empty_events", serialize({ events: [] }), invalid("events")),
      },
      events_not_array: {
        w: 1,
        make: () =>
          bad(
            "events_not_array",
            serialize({ events: c.pick([null, {}, validEvent("x"), "x", 3]) }),
            invalid("events"),
          ),
      },
      extra_top_level: {
        w: 2,
        make: () => {
          const f = c.pick(["extra", "eventId", "service", "batchId"]);
          return bad("extra_top_level", serialize({ events: batch(1), [f]: "x" }), invalid(f));
        },
      },
      not_object: {
        w: 2,
        make: () =>
          bad(
            "not_object",
            c.pick(["null", "[]", `[${one()}]`, "42", '"text"', "true"]),
            invalid(""),
          ),
      },
      event_fault: {
        w: 30,
        make: () => {
          const e = validEvent(`hb-${n}`);
          const fault = c.weighted(eventFaults);
          const field = eventFaults[fault]!.make(e);
          return bad(`event.${fault}`, serialize(e), invalid(field));
        },
      },
      batch_event_fault: {
        w: 20,
        make: () => {
          const events = batch(c.int(2, 30));
          const at = c.int(0, events.length - 1);
          if (c.random() < 0.1) {
            events[at] = c.pick<unknown>([null, 3, "x", [], true]) as Json;
            return bad("batch.not_object", serialize({ events }), invalid(`events.${at}`));
          }
          const fault = c.weighted(eventFaults);
          const field = eventFaults[fault]!.make(events[at]!);
          return bad(`batch.${fault}`, serialize({ events }), invalid(`events.${at}.${field}`));
        },
      },
      unknown_path: {
        w: 1,
        make: () =>
          bad(
            "unknown_path",
            one(),
            { status: 404, code: "not_found" },
            {
              url: c.pick(["/v1/usage/x", "/v2/usage", "/v1/usages", "/", "/v1/us%zzage"]),
            },
          ),
      },
      wrong_method: {
        w: 1,
        make: () =>
          bad(
            "wrong_method",
            one(),
            { status: 404, code: "not_found" },
            {
              method: c.pick(["GET", "PUT", "DELETE", "PATCH"]),
            },
          ),
      },
    };
    return table[c.weighted(table)]!.make();
  }

  const cases: HttpCase[] = [];
  const keys = Object.keys(routes);
  while (cases.length < 6_600) {
    const k = c.random() < 0.4 ? ingestCase() : apiCase(c.pick(keys));
    if (k !== null) cases.push(k);
    n++;
  }
  return cases;
}

/** Runs the cases with `concurrency` in flight; returns what went wrong, one line per case. */
async function runCases(cases: HttpCase[], concurrency: number) {
  const problems: string[] = [];
  const accepted = { ingest: new Set<string>(), api: new Set<string>() };
  let next = 0;
  async function worker() {
    while (next < cases.length) {
      const k = cases[next++]!;
      const app = k.target === "ingest" ? ingest.app : api.app;
      const r = await app.inject({
        method: k.method as "GET",
        url: k.url,
        headers: k.headers,
        ...(k.payload === undefined ? {} : { payload: k.payload }),
      });
      const where = `${k.kind} ${k.method} ${k.url.slice(0, 80)} ${(k.payload ?? "").slice(0, 100)}`;
      let body: Json;
      try {
        body = r.json();
      } catch {
        problems.push(`${where}: ${r.statusCode}, body not JSON: ${r.body.slice(0, 120)}`);
        continue;
      }
      if (k.valid !== undefined) {
        if (r.statusCode !== k.valid.status) {
          problems.push(`${where}: valid request answered ${r.statusCode} ${r.body.slice(0, 200)}`);
        } else {
          if (k.target === "ingest") expect(body.accepted).toEqual(k.valid.sent);
          for (const id of k.valid.sent) accepted[k.target].add(id);
        }
        continue;
      }
      const want = k.want!;
      const e = body.error as { code?: unknown; field?: unknown; message?: unknown } | undefined;
      const ok =
        r.statusCode === want.status &&
        Object.keys(body).length === 1 &&
        typeof e?.message === "string" &&
        e.message.length > 0 &&
        typeof e.field === "string" &&
        (want.code === undefined || [want.code].flat().includes(String(e.code))) &&
        (want.field === undefined || e.field === want.field);
      if (!ok)
        problems.push(
          `${where}: got ${r.statusCode} ${r.body.slice(0, 200)}; want ${JSON.stringify(want)}`,
        );
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { problems, accepted };
}

describe("bad-input barrage over HTTP", () => {
  it("refuses every bad request to the ingest and the API with a 4xx naming the field; the valid ones reach Kafka once", async () => {
    // Members the API reads, written as the consumer writes them.
    for (const user of R_USERS) {
      const m = buildMember(config, user, NOW_MS - 3 * DAY_MS, [
        usage(user, `${user}-e0`, `${user}-t0`, "chat", "kimi-k2", 20_000, NOW_MS - HOUR_MS),
      ]);
      await writeMember(redis, iso.keyPrefix, m.state, 3);
    }
    const openapi = (await api.app.inject({ method: "GET", url: "/docs/json" })).json() as OpenApi;
    const cases = httpPlan(chooser(seededRandom(SEED + 1)), await credentials(), openapi);
    for (const k of cases)
      count(`http.${k.kind}${k.want === undefined ? "" : `.${k.want.status}`}`);
    const bad = cases.filter((k) => k.want !== undefined);
    const usageBefore = await topicSize(topics.usage);
    const commandsBefore = await topicSize(topics.commands);

    const started = performance.now();
    const { problems, accepted } = await runCases(cases, 16);
    const ms = Math.round(performance.now() - started);
    console.log(`HTTP barrage: ${cases.length} requests (${bad.length} bad) in ${ms} ms`);
    expect(problems.slice(0, 15)).toEqual([]);
    expect(kafkaFaultCount + bad.length).toBeGreaterThanOrEqual(10_000);

    // Both apps still answer, and a last valid request to each is accepted.
    expect((await ingest.app.inject({ url: "/healthz" })).statusCode).toBe(200);
    expect((await api.app.inject({ url: "/healthz" })).statusCode).toBe(200);
    const last = await ingest.app.inject({
      method: "POST",
      url: "/v1/usage",
      headers: { authorization: `Bearer ${INGEST}` },
      payload: {
        ...{ eventId: "hv-last", userId: "hu0", taskId: "t-last", feature: "chat" },
        ...{ model: "kimi-k2", inputTokens: 10, outputTokens: 1, occurredAt: NOW_MS },
      },
    });
    expect(last.statusCode).toBe(202);
    accepted.ingest.add("hv-last");
    const expiresAt = new Date(NOW_MS + DAY_MS).toISOString();
    const lastGrant = await api.app.inject({
      method: "POST",
      url: "/v1/admin/members/au0/bonus-grants",
      headers: { authorization: `Bearer ${ADMIN}` },
      payload: { commandId: "av-last", amountMicros: 1_000_000, expiresAt },
    });
    expect(lastGrant.statusCode).toBe(202);
    accepted.api.add("av-last");
    // The longest id the contracts allow is readable (the router once stopped at 100 characters).
    const longest = await api.app.inject({
      url: `/v1/members/${"l".repeat(128)}/balance`,
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect({ status: longest.statusCode, error: longest.json().error }).toMatchObject({
      status: 404,
      error: { code: "member_not_found", field: "userId" },
    });

    // Kafka holds each accepted id once, and nothing else from HTTP.
    type FromHttp = { id: string; key: string | null; input: EngineInput; offset: number };
    const fromHttp = async (topic: string, kind: "usage" | "command", before: number) => {
      const records = await readAll(topic);
      const out: FromHttp[] = [];
      for (const r of records) {
        if (r.headers[ID_HEADER] !== undefined) continue; // the Kafka barrage's own records
        const d = await codec.decode(kind, r.value);
        if (!d.ok) throw new Error(`an HTTP record does not decode: ${d.detail}`);
        const input =
          kind === "usage"
            ? usageEventFromRecord(d.value as UsageEventRecord)
            : commandFromRecord(d.value as CreditCommandRecord);
        out.push({ id: input.id, key: r.key, input, offset: Number(r.offset) });
      }
      expect(records.length - before).toBe(out.length);
      return out;
    };
    const httpUsage = await fromHttp(topics.usage, "usage", usageBefore);
    const httpCommands = await fromHttp(topics.commands, "command", commandsBefore);
    expect(httpUsage.map((r) => r.id).sort()).toEqual([...accepted.ingest].sort());
    expect(httpCommands.map((r) => r.id).sort()).toEqual([...accepted.api].sort());

    // The consumer applies them exactly, next to the barrage, and dead-letters none of them.
    await waitCaughtUp(conn, groupId, [topics.usage, topics.commands], 60_000);
    await consumerHealthy();
    expect(await topicSize(topics.deadLetters)).toBe(kafkaFaultCount);
    const ledger = await ledgerByUser(codec, await readAll(topics.ledger));
    const byUser = new Map<string, FromHttp[]>();
    for (const r of [...httpUsage, ...httpCommands]) {
      expect(r.key).toBe(r.input.userId);
      byUser.set(r.input.userId, [...(byUser.get(r.input.userId) ?? []), r]);
    }
    expect([...byUser.keys()]).toEqual(expect.arrayContaining(["au0", "hu0"]));
    for (const [user, list] of byUser) {
      // Each member here has records on one topic, so on one partition: offset order is theirs.
      list.sort((a, b) => a.offset - b.offset);
      const expected = replayMember(
        user,
        list.map((r) => r.input),
        config,
        NOW_MS,
      )!;
      const stored = await readMember(redis, iso.keyPrefix, user);
      expect(withoutHorizonTimes(stored.state!), user).toEqual(withoutHorizonTimes(expected));
      expect(sumMicros(ledger.get(user)), user).toBe(ledgerBalanceMicros(stored.state!));
    }
  });
});
