// Goal: a ClickHouse outage never stops debiting, and history catches up afterwards. Under a
// steady load through the real consumer, the ClickHouse front the history sink writes to is
// stopped for CF_OUTAGE_SECONDS (30 by default): balances in Redis keep moving meanwhile, and
// within 30 s of ClickHouse's return it holds every ledger entry and usage event exactly once.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ClickHouseLogLevel, createClient } from "@clickhouse/client";
import type { LedgerEntryRecord } from "@creditflow/contracts";
import { ensureTopics } from "@creditflow/kafka";
import { keySpace, MemberReader } from "@creditflow/member-store";
import type { CreditProducer } from "@creditflow/producer";
import { afterAll, describe, expect, it } from "vitest";
import { fixture } from "../support/fixture.ts";
import { freePort, waitFor } from "../support/wait.ts";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const fx = fixture(import.meta.url);
const { iso, urls } = fx;
const topics = fx.topicNames();
const outageMs = Number(process.env.CF_OUTAGE_SECONDS ?? 30) * 1000;
const MEMBERS = 20;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("history through a ClickHouse outage under load", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "cf-outage-"));
  const database = iso.database;
  const children: ChildProcess[] = [];
  let producer: CreditProducer | undefined;
  const redis = fx.redis;

  afterAll(async () => {
    for (const c of children) c.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  });

  function start(entry: string, env: Record<string, string>): ChildProcess {
    const child = spawn(process.execPath, [join(repoRoot, entry)], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "ignore", "inherit"],
    });
    children.push(child);
    return child;
  }

  it("keeps debiting while ClickHouse is down and catches up within 30 s of its return", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const frontEnv = {
      CF_CLICKHOUSE_PORT: String(port),
      CF_CLICKHOUSE_DATA_DIR: dataDir,
      CF_CLICKHOUSE_LOG_LEVEL: "warn",
    };
    let front = start("services/chdb-server/src/main.ts", frontEnv);
    await waitFor(
      "the private ClickHouse front",
      async () => (await fetch(`${url}/ping`)).ok,
      30_000,
    );

    await fx.topics(undefined, { partitions: 3 });
    await ensureTopics(fx.conn, [topics.ledger, topics.deadLetters], 3);
    await fx.startConsumer({
      clientId: `outage-${iso.id}`,
      limits: { sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1_000 },
      awaitJoin: false,
    });
    start("services/history/src/main.ts", {
      KAFKA_BROKERS: urls.kafkaBrokers.join(","),
      SCHEMA_REGISTRY_URL: urls.schemaRegistryUrl,
      CLICKHOUSE_URL: url,
      CF_CLICKHOUSE_DATABASE: database,
      CF_TOPIC_PREFIX: `t_${iso.id}`,
      CF_SINK_GROUP: iso.group("sink"),
      CF_SINK_MAX_BATCH_AGE_MS: "300",
      CF_LOG_LEVEL: "error",
    });
    producer = await fx.producer({ service: "outage-test", compression: "gzip" });

    // Steady load: about 100 events/s over MEMBERS members until told to stop.
    let sent = 0;
    let loading = true;
    const load = (async () => {
      while (loading) {
        const batch = Array.from({ length: 10 }, () => {
          const n = sent++;
          return producer!.recordUsage({
            eventId: `ev-${n}`,
            userId: `m${n % MEMBERS}`,
            taskId: `task-${Math.floor(n / 4)}`,
            feature: "chat",
            model: "kimi-k2",
            inputTokens: 500 + (n % 300),
            outputTokens: 100,
            occurredAt: Date.now(),
          });
        });
        await Promise.all(batch);
        await sleep(100);
      }
    })();

    const ch = createClient({ url, database, log: { level: ClickHouseLogLevel.OFF } });
    const count = async (sql: string) => {
      const rs = await ch.query({ query: sql, format: "JSONEachRow" });
      return Number((await rs.json<{ n: string }>())[0]?.n ?? 0);
    };
    await waitFor(
      "history to start filling",
      async () => (await count("SELECT count() AS n FROM ledger_entries")) > 50,
      60_000,
    );

    const versions = async () => {
      const members = await new MemberReader(redis, keySpace(iso.keyPrefix)).members(
        Array.from({ length: MEMBERS }, (_, i) => `m${i}`),
      );
      return [...members.values()].reduce((s, m) => s + m.version, 0);
    };

    // The outage.
    front.kill("SIGTERM");
    await new Promise((r) => front.once("exit", r));
    const before = await versions();
    const sentBefore = sent;
    await sleep(outageMs);
    const after = await versions();
    expect(sent - sentBefore).toBeGreaterThan((outageMs / 1000) * 20); // the load went on
    expect(after - before).toBeGreaterThan((outageMs / 1000) * 20); // and so did debiting

    front = start("services/chdb-server/src/main.ts", frontEnv);
    const backAt = Date.now();
    await waitFor("the front to return", async () => (await fetch(`${url}/ping`)).ok, 30_000);
    loading = false;
    await load;
    await producer.flush();

    // Everything the consumer wrote to the ledger, once per id.
    const codec = fx.codec;
    const ledgerIds = new Set<string>();
    await waitFor(
      "the consumer to have relayed every event",
      async () => {
        const records = await fx.readTopic(topics.ledger, { idleMs: 1_500, timeoutMs: 20_000 });
        ledgerIds.clear();
        const debited = new Set<string>();
        for (const r of records) {
          const d = await codec.decode("ledger", r.value);
          if (!d.ok) continue;
          const e = d.value as LedgerEntryRecord;
          ledgerIds.add(e.entryId);
          if (e.kind === "debit" || e.kind === "overdraft") debited.add(e.entryId.split("#")[0]!);
        }
        return debited.size === sent;
      },
      60_000,
    );
    await waitFor(
      "history to hold every ledger entry",
      async () => (await count("SELECT count() AS n FROM ledger_entries")) >= ledgerIds.size,
      Math.max(1_000, 30_000 - (Date.now() - backAt)),
    );
    await sleep(1_000); // anything doubled would have landed by now
    expect(await count("SELECT count() AS n FROM ledger_entries")).toBe(ledgerIds.size);
    expect(await count("SELECT uniqExact(entry_id) AS n FROM ledger_entries")).toBe(ledgerIds.size);
    await waitFor(
      "every usage event",
      async () => (await count("SELECT count() AS n FROM usage_events")) >= sent,
      30_000,
    );
    expect(await count("SELECT count() AS n FROM usage_events")).toBe(sent);
    await ch.close();
  });
});
