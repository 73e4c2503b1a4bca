// Goal: a seeded barrage of malformed records on the usage and commands topics changes nothing
// it should not. Every malformed record lands once in the dead-letter topic with the reason for
// its kind, its original key and bytes, and headers pointing at its source offset (a record too
// large for its dead letter to carry the headers under the broker's 1 MiB limit keeps a prefix
// of its bytes and a `cf-truncated` header; 400 letters of one member that exceed 1 MiB together
// go out whole); the consumer stays up and healthy; the valid records mixed in at random
// positions are applied exactly (Redis equals the engine over them, each member's ledger sums to
// the balance, no ledger entry comes from a bad record). With barrage-http.test.ts, more than
// 10,000 bad inputs. Replay a run with CF_BARRAGE_SEED=<the seed printed at the start>.

import type { DeadLetterReason } from "@creditflow/contracts";
import {
  type CreditCommandRecord,
  commandFromRecord,
  type LedgerEntryRecord,
  recordFromCommand,
  type UsageEventRecord,
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
import { seededRandom } from "@creditflow/loadgen";
import { describe, expect, it } from "vitest";
import {
  ledgerByUser,
  type ReadRecord,
  replayMember,
} from "../../services/consumer/testing/harness.ts";
import { BAD_INPUTS_PER_HALF, useBarrageStack } from "../support/barrage-stack.ts";
import {
  avroLong,
  avroString,
  type Chooser,
  chooser,
  confluentFrame,
  interleave,
} from "../support/generators.ts";

const b = useBarrageStack(import.meta.url);
const { codec, config, conn, consumerHealthy, readAll, topics, nowMs: NOW_MS } = b;
/** Header on every barrage record; the consumer copies it onto the dead letter. */
const ID_HEADER = "bx-id";
const K_USERS = Array.from({ length: 24 }, (_, i) => `ku${i}`);

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

  /**
   * `user`'s record on `topic` (kind `<label>.<fault>`) of one fault drawn by weight from `table`
   * and the two key faults every topic has (no key; another member's key), each weighted
   * `keyWeight`; `good` encodes the member's valid record.
   */
  const faultRecord = (
    topic: string,
    label: string,
    user: string,
    good: () => Buffer,
    keyWeight: number,
    table: Record<string, { w: number; make: () => Fault }>,
  ): Planned => {
    const faults = {
      ...table,
      null_key: {
        w: keyWeight,
        make: (): Fault => ({ value: good(), outcome: "key_mismatch", key: null }),
      },
      key_mismatch: {
        w: keyWeight,
        make: (): Fault => ({
          value: good(),
          outcome: "key_mismatch",
          key: c.pick(K_USERS.filter((u) => u !== user)),
        }),
      },
    };
    const kind = c.weighted(faults);
    const f = faults[kind].make();
    return record(topic, `${label}.${kind}`, f.key === undefined ? user : f.key, f);
  };

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
    const good = () => encUsage(base());
    const table = {
      ...frameFaults(good, () =>
        c.random() < 0.5 ? encCommand(grant(user, `kb-${n}`, 1_000)) : ledgerBytes(),
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
          return { value: confluentFrame(codec.schemaId("usage"), body), outcome: "undecodable" };
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
    };
    return faultRecord(topics.usage, "usage", user, good, 4, table);
  };

  const badCommand = (): Planned => {
    const user = c.pick(K_USERS);
    const g = grant(user, `kb-${n}`, 1_000_000);
    const enc = (over: Partial<typeof g>, outcome: Outcome, key?: string | null): Fault => ({
      value: encCommand({ ...g, ...over }),
      outcome,
      key,
    });
    const good = () => encCommand(g);
    const table = {
      ...frameFaults(good, () =>
        c.random() < 0.5 ? encUsage(usageRecord(user, `kb-${n}`)) : ledgerBytes(),
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
          return { value: confluentFrame(codec.schemaId("command"), body), outcome: "undecodable" };
        },
      },
    };
    return faultRecord(topics.commands, "commands", user, good, 5, table);
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

describe("bad-input barrage through Kafka", () => {
  it("dead-letters every malformed record once with its reason; applies the valid ones exactly", async () => {
    const { phaseA, phaseB } = kafkaPlan(chooser(seededRandom(b.seed)));
    const all = [...phaseA, ...phaseB];
    for (const p of all) b.tally(`kafka.${p.kind}`);
    const isApplied = (p: Planned) => p.outcome === "applied" || p.outcome === "refused";
    const faults = all.filter((p) => !isApplied(p));
    expect(faults.length, "malformed records sent").toBeGreaterThanOrEqual(BAD_INPUTS_PER_HALF);

    // Commands first, then usage: one member's commands and usage sit on two topics the
    // consumer reads independently, so the test orders them itself.
    await produce(phaseA);
    await b.drained([topics.commands]);
    await produce(phaseB);
    await b.drained([topics.usage, topics.commands]);

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
    const metrics = await fetch(`http://127.0.0.1:${b.consumer.metricsPort}/metrics`).then((r) =>
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
      const stored = await b.expectAsEngine(
        user,
        mine.map((p) => p.input!),
        ledger,
      );
      expect(stored.outboxLength).toBe(0);
      // The refused commands changed nothing the valid records alone would not have.
      const validOnly = mine.filter((p) => p.outcome === "applied").map((p) => p.input!);
      expect(ledgerBalanceMicros(stored.state!), user).toBe(
        ledgerBalanceMicros(replayMember(user, validOnly, config, NOW_MS)!),
      );
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
