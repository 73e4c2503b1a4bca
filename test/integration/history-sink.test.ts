// Goal: the history sink puts every ledger entry, accepted usage event and grant command into
// ClickHouse exactly once, through duplicates on the topics, a SIGKILLed sink and a ClickHouse
// outage, and the analysts' rollups agree with the raw tables, also when an insert is sent again
// with its deduplication token.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type ClickHouseClient, ClickHouseLogLevel, createClient } from "@clickhouse/client";
import { type LedgerEntryRecord, ledgerRecordFromEntry } from "@creditflow/contracts";
import type { LedgerEntry } from "@creditflow/engine";
import { chTime, DEFAULT_SINK_LIMITS, ledgerRow, migrate } from "@creditflow/history";
import { ensureTopics, idempotentProducer } from "@creditflow/kafka";
import type { CreditProducer } from "@creditflow/producer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixture } from "../support/fixture.ts";
import { freePort, waitFor } from "../support/wait.ts";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const fx = fixture(import.meta.url, { partitions: 3 });
const { iso, urls, conn, codec } = fx;
const topics = fx.topicNames();
const ledgerProducer = idempotentProducer(conn);
let producer: CreditProducer;

const T0 = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000;
/**
 * The sink's promise after an outage: its next retry is at most retryMaxMs away (it backs off
 * from 200 ms, doubling to 5 s, and the processes here run the default limits), and that flush,
 * with the ones queued behind it, lands what it kept. 5 s on top for those flushes and the
 * polls on a loaded machine.
 */
const CAUGHT_UP_AFTER_RETURN_MS = DEFAULT_SINK_LIMITS.retryMaxMs + 5_000;
/** How long the sink's group may take to commit past every record once its rows are stored. */
const COMMIT_DEADLINE_MS = 30_000;

function entry(
  n: number,
  user: string,
  kind: LedgerEntry["kind"],
  amount: number,
  extra: Partial<LedgerEntry> = {},
): LedgerEntry {
  return {
    id: `${user}-e${n}#0`,
    kind,
    userId: user,
    grantId: `${user}-bonus`,
    cls: "bonus",
    amountMicros: amount,
    balanceAfterMicros: 0,
    detailMicros: 0,
    feature: kind === "debit" ? "chat" : null,
    taskId: kind === "debit" ? `${user}-task-${Math.floor(n / 2)}` : null,
    eventAtMs: T0 + n * 1000,
    processedAtMs: T0 + n * 1000 + 5,
    ...extra,
  };
}

async function sendLedger(entries: LedgerEntry[]): Promise<void> {
  await ledgerProducer.send({
    topic: topics.ledger,
    acks: -1,
    messages: entries.map((e) => ({
      key: e.userId,
      value: codec.encode("ledger", ledgerRecordFromEntry(e, "plus") satisfies LedgerEntryRecord),
    })),
  });
}

function usage(n: number, user: string) {
  return {
    eventId: `${user}-u${n}`,
    userId: user,
    taskId: `${user}-task-${Math.floor(n / 2)}`,
    feature: n % 3 === 0 ? "code" : "chat",
    model: "kimi-k2",
    inputTokens: 1000 * (n + 1),
    outputTokens: 100 * (n + 1),
    occurredAt: T0 + n * 1000,
  };
}

function startSinkProcess(clickhouseUrl: string, database: string, group: string): ChildProcess {
  return spawn(process.execPath, [join(repoRoot, "services/history/src/main.ts")], {
    env: {
      ...process.env,
      KAFKA_BROKERS: urls.kafkaBrokers.join(","),
      SCHEMA_REGISTRY_URL: urls.schemaRegistryUrl,
      CLICKHOUSE_URL: clickhouseUrl,
      CF_CLICKHOUSE_DATABASE: database,
      CF_TOPIC_PREFIX: `t_${iso.id}`,
      CF_SINK_GROUP: group,
      CF_SINK_MAX_BATCH_AGE_MS: "200",
      CF_SINK_MAX_BATCH_ROWS: "50",
      CF_LOG_LEVEL: "warn",
      KAFKAJS_NO_PARTITIONER_WARNING: "1",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
}

async function count(client: ClickHouseClient, sql: string): Promise<number> {
  const rs = await client.query({ query: sql, format: "JSONEachRow" });
  const [row] = await rs.json<{ n: string | number }>();
  return Number(row?.n ?? 0);
}

/**
 * Nothing doubled, checked at every poll (250 ms) until the sink's `group` has committed past
 * every record on the topics it stores (the duplicates sent on them included), and once more
 * after: the sink commits only after its rows are in ClickHouse, so from then on the counts are
 * final. `exactly` expects the exact counts; a row that lands twice fails the first poll that
 * sees it.
 */
async function nothingDoubled(group: string, exactly: () => Promise<void>): Promise<void> {
  let committed = false;
  const caughtUp = fx.caughtUp(
    [topics.ledger, topics.usage, topics.commands],
    group,
    COMMIT_DEADLINE_MS,
  );
  const settle = () => {
    committed = true;
  };
  caughtUp.then(settle, settle);
  while (!committed) {
    await exactly();
    await new Promise((r) => setTimeout(r, 250));
  }
  await caughtUp; // throws when the group was still behind at the deadline
  await exactly();
}

beforeAll(async () => {
  await fx.topics();
  await ensureTopics(conn, [topics.ledger, topics.deadLetters], 3);
  await ledgerProducer.connect();
  fx.onCleanup(() => ledgerProducer.disconnect());
  producer = await fx.producer({ service: "history-test", compression: "gzip" });
});

describe("history sink", () => {
  const database = `${iso.database}_a`;
  const client = fx.clickhouseIn(database);
  let sink: ChildProcess | undefined;

  afterAll(() => {
    sink?.kill("SIGKILL");
  });

  it("stores each entry, event and grant once through duplicates and a SIGKILLed sink", async () => {
    const users = ["ann", "bob", "cyd"];
    const firstHalf = users.flatMap((u) => [
      entry(0, u, "grant", 50_000_000),
      ...Array.from({ length: 10 }, (_, n) => entry(n + 1, u, "debit", -(n + 1) * 1000)),
    ]);
    const secondHalf = users.flatMap((u) => [
      ...Array.from({ length: 10 }, (_, n) => entry(n + 11, u, "debit", -(n + 11) * 1000)),
      entry(30, u, "expire", -1_000_000, { eventAtMs: T0 + 40_000 }),
      entry(31, u, "overdraft", 0, {
        detailMicros: 777,
        cls: null,
        grantId: null,
        taskId: `${u}-task-99`,
        feature: "code",
      }),
    ]);
    await producer.sendCommand(
      {
        type: "grant_bonus",
        id: "ann-bonus",
        userId: "ann",
        atMs: T0,
        source: "promotion",
        amountMicros: 50_000_000,
        effectiveFromMs: T0,
        expiresAtMs: T0 + 86_400_000,
        priority: 0,
        recurrence: null,
      },
      "admin:test",
      "black-friday",
    );
    await sendLedger(firstHalf);
    await sendLedger(firstHalf.slice(0, 7)); // duplicates on the topic, same ids
    for (const u of users)
      await Promise.all(Array.from({ length: 6 }, (_, n) => producer.recordUsage(usage(n, u))));
    await producer.recordUsage(usage(0, "ann")); // a producer retry: same id, same content

    sink = startSinkProcess(urls.clickhouseUrl, database, iso.group("sink-a"));
    await waitFor(
      "the first half in ClickHouse",
      async () =>
        (await count(client, "SELECT count() AS n FROM ledger_entries")) >= firstHalf.length,
      60_000,
    );
    sink.kill("SIGKILL"); // mid-stream: some offsets flushed, maybe not committed

    await sendLedger(secondHalf);
    await sendLedger(secondHalf.slice(3, 12));
    sink = startSinkProcess(urls.clickhouseUrl, database, iso.group("sink-a"));

    const expectedLedger = firstHalf.length + secondHalf.length;
    await waitFor(
      "every ledger entry",
      async () =>
        (await count(client, "SELECT count() AS n FROM ledger_entries")) >= expectedLedger,
      60_000,
    );
    await waitFor(
      "every usage event",
      async () => (await count(client, "SELECT count() AS n FROM usage_events")) >= 18,
      30_000,
    );

    // Exactly once, even without FINAL: the sink skips what is stored, so the rollups are exact too.
    await nothingDoubled(iso.group("sink-a"), async () => {
      expect(await count(client, "SELECT count() AS n FROM ledger_entries")).toBe(expectedLedger);
      expect(await count(client, "SELECT uniqExact(entry_id) AS n FROM ledger_entries")).toBe(
        expectedLedger,
      );
      expect(await count(client, "SELECT count() AS n FROM usage_events")).toBe(18);
      expect(await count(client, "SELECT count() AS n FROM grant_commands")).toBe(1);
    });

    // Rollups agree with the raw tables.
    expect(await count(client, "SELECT sum(cost_micros) AS n FROM usage_daily")).toBe(
      await count(client, "SELECT sum(cost_micros) AS n FROM usage_events FINAL"),
    );
    expect(await count(client, "SELECT sum(events) AS n FROM usage_daily")).toBe(18);
    expect(await count(client, "SELECT sum(forfeited_micros) AS n FROM bonus_by_grant")).toBe(
      3 * 1_000_000,
    );
    expect(await count(client, "SELECT sum(spent_micros) AS n FROM bonus_by_grant")).toBe(
      -(await count(
        client,
        "SELECT sum(amount_micros) AS n FROM ledger_entries FINAL WHERE kind = 'debit'",
      )),
    );
    expect(await count(client, "SELECT sum(shortfall_micros) AS n FROM overdrafts_daily")).toBe(
      3 * 777,
    );
    expect(
      await count(
        client,
        "SELECT sum(entries) AS n FROM ledger_daily_by_tier WHERE tier_id = 'plus'",
      ),
    ).toBe(expectedLedger);
    const campaign = await client.query({
      query: "SELECT campaign, source FROM grant_commands",
      format: "JSONEachRow",
    });
    expect(await campaign.json()).toEqual([{ campaign: "black-friday", source: "promotion" }]);

    // A usage event's cost is the rate card's price.
    const cost = await count(
      client,
      "SELECT cost_micros AS n FROM usage_events WHERE event_id = 'ann-u0'",
    );
    expect(cost).toBe(Math.ceil((1000 * 10_000 + 100 * 40_000) / 1000));
  });
});

describe("history through a ClickHouse outage", () => {
  let front: ChildProcess | undefined;
  let sink: ChildProcess | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), "cf-outage-ch-"));
  const database = `${iso.database}_b`;
  let url = "";

  function startFront(port: number): ChildProcess {
    return spawn(process.execPath, [join(repoRoot, "services/chdb-server/src/main.ts")], {
      env: {
        ...process.env,
        CF_CLICKHOUSE_PORT: String(port),
        CF_CLICKHOUSE_DATA_DIR: dataDir,
        CF_CLICKHOUSE_LOG_LEVEL: "warn",
      },
      stdio: ["ignore", "ignore", "inherit"],
    });
  }

  afterAll(() => {
    sink?.kill("SIGKILL");
    front?.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("keeps what arrives while ClickHouse is down and catches up when it returns", async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    front = startFront(port);
    const client = createClient({ url, database, log: { level: ClickHouseLogLevel.OFF } });
    await waitFor(
      "a private ClickHouse front",
      async () => (await fetch(`${url}/ping`)).ok,
      30_000,
    );
    sink = startSinkProcess(url, database, iso.group("sink-b"));
    await sendLedger([entry(0, "dan", "grant", 9_000_000)]);
    await waitFor(
      "the first entry",
      async () =>
        (await count(client, "SELECT count() AS n FROM ledger_entries WHERE user_id = 'dan'")) ===
        1,
      60_000,
    );

    front.kill("SIGTERM");
    await new Promise((r) => front!.once("exit", r));
    const during = Array.from({ length: 40 }, (_, n) => entry(n + 1, "dan", "debit", -1000));
    await sendLedger(during.slice(0, 20));
    await new Promise((r) => setTimeout(r, 4_000)); // the sink retries against a dead port
    await sendLedger(during.slice(20));

    front = startFront(port);
    await waitFor("the ClickHouse front back", async () => (await fetch(`${url}/ping`)).ok, 30_000);
    // The promise is the deadline: waitFor throws once CAUGHT_UP_AFTER_RETURN_MS has passed.
    const dans = () =>
      count(client, "SELECT count() AS n FROM ledger_entries WHERE user_id = 'dan'");
    await waitFor(
      `history to catch up within ${CAUGHT_UP_AFTER_RETURN_MS} ms of ClickHouse's return`,
      async () => (await dans()) >= 41,
      CAUGHT_UP_AFTER_RETURN_MS,
    );
    await nothingDoubled(iso.group("sink-b"), async () => expect(await dans()).toBe(41));
    await client.close();
  });
});

describe("the sink's insert token and the rollups", () => {
  const database = `${iso.database}_c`;
  const client = fx.clickhouseIn(database);

  it("counts an insert sent again with its token once in every rollup; other rows that add up alike count", async () => {
    await migrate(urls.clickhouseUrl, database);
    // What the sink sends with each insert (HistoryWriter.write): its batch's token, and
    // deduplication in the tables the materialized views feed.
    const send = (table: string, values: object[], token: string) =>
      client.insert({
        table,
        values,
        format: "JSONEachRow",
        clickhouse_settings: {
          insert_deduplication_token: token,
          deduplicate_blocks_in_dependent_materialized_views: 1,
        },
      });
    // n and n + 1: a bonus debit and an overdraft; two such batches differ by their ids only.
    const ledgerBatch = (n: number) =>
      [
        entry(n, "eve", "debit", -1000),
        entry(n + 1, "eve", "overdraft", 0, { detailMicros: 777, cls: null, grantId: null }),
      ].map((e, i) => ({
        ...ledgerRow(ledgerRecordFromEntry(e, "plus"), { partition: 0, offset: n + i }),
        event_at: chTime(T0),
      }));
    const usageBatch = (n: number) => [
      {
        event_id: `eve-u${n}`,
        user_id: "eve",
        task_id: "eve-task",
        feature: "chat",
        task_kind: null,
        model: "kimi-k2",
        input_tokens: 1000,
        output_tokens: 100,
        cached_input_tokens: 0,
        cost_micros: 5000,
        rate_card_version: "test",
        occurred_at: chTime(T0),
        service: "test",
        kafka_partition: 0,
        kafka_offset: n,
      },
    ];
    // A retry that races the attempt the sink gave up on (a request timeout; ClickHouse finishes
    // that write anyway), so the stored-ids check found nothing: the same rows, the same token.
    for (let attempt = 0; attempt < 2; attempt++) {
      await send("ledger_entries", ledgerBatch(0), "ledger-batch-1");
      await send("usage_events", usageBatch(0), "usage-batch-1");
    }
    // A later batch whose rollup rows are exactly the first one's: counted, not taken for it.
    await send("ledger_entries", ledgerBatch(2), "ledger-batch-2");
    await send("usage_events", usageBatch(1), "usage-batch-2");

    expect(await count(client, "SELECT count() AS n FROM ledger_entries")).toBe(4);
    expect(await count(client, "SELECT count() AS n FROM usage_events")).toBe(2);
    expect(await count(client, "SELECT sum(entries) AS n FROM ledger_daily_by_tier")).toBe(4);
    expect(await count(client, "SELECT sum(spent_micros) AS n FROM bonus_by_grant")).toBe(2000);
    expect(await count(client, "SELECT sum(overdrafts) AS n FROM overdrafts_daily")).toBe(2);
    expect(await count(client, "SELECT sum(shortfall_micros) AS n FROM overdrafts_daily")).toBe(
      2 * 777,
    );
    expect(await count(client, "SELECT sum(events) AS n FROM usage_daily")).toBe(2);
    expect(await count(client, "SELECT sum(cost_micros) AS n FROM usage_daily")).toBe(2 * 5000);
  });
});
