// Goal: a member's ledger keeps its write order when the consumer takes it from its member cache.
// Against the real Redis: a unit writes a member (its entries in the outbox, not relayed yet);
// before that unit's relay, another writer of the same process (a unit of the member's other
// partition, or the sweeper) must see those entries and relay them before its own. A member
// taken from the cache in that window had none to see: the chaos run (seed 4) found the sweeper's
// `expire` on the ledger ahead of the 18 debits it was computed on.

import { applyToMembers, fillCache, MemberCache } from "@creditflow/consumer";
import type { OutboxField } from "@creditflow/member-store";
import { describe, expect, it } from "vitest";
import { usageInputRecord } from "../../services/consumer/testing/harness.ts";
import { fixture } from "../support/fixture.ts";

const fx = fixture(import.meta.url);
const { config } = fx;
const store = fx.store();
const NOW_MS = Date.UTC(2026, 11, 2, 12, 0, 0);
const record = (user: string, n: number, topic: string, partition: number) =>
  usageInputRecord(user, n, NOW_MS, topic, partition);

describe("member cache and ledger order", () => {
  it("keeps a member out of the cache until its write is relayed, so the next writer relays it first", async () => {
    const user = "co1";
    const cache = new MemberCache(100);
    const ctx = { config, nowMs: NOW_MS };
    // Unit 1 of partition usage[2]: the member opened and two debits, in the outbox.
    const first = await applyToMembers(
      store,
      [{ userId: user, records: [record(user, 0, "usage", 2), record(user, 1, "usage", 2)] }],
      ctx,
      4,
      cache,
    );
    expect(first.counts.applied).toBe(2);
    const entryIds = (fields: OutboxField[]) =>
      fields.flatMap((f) => Array.from({ length: f.count }, (_, i) => `${f.field}/${i}`));
    const firstFields = entryIds(first.toRelay);
    expect(firstFields.length).toBeGreaterThan(2);

    // Before unit 1 is relayed, a unit of the member's other partition in the same process.
    const second = await applyToMembers(
      store,
      [{ userId: user, records: [record(user, 2, "commands", 5)] }],
      { config, nowMs: NOW_MS + 1_000 },
      4,
      cache,
    );
    expect(second.counts.applied).toBe(1);
    // It loaded the member from Redis and found unit 1's entries: they go first, in their order.
    expect(second.leftovers).toBe(firstFields.length);
    expect(entryIds(second.toRelay).slice(0, firstFields.length)).toEqual(firstFields);
    expect(entryIds(second.toRelay).length).toBeGreaterThan(firstFields.length);

    // Both relayed and released (in the consumer: finishUnit), the member may be cached again and
    // the next unit starts from the cache with nothing left to relay.
    await store.release(first.toRelay);
    fillCache(cache, first);
    await store.release(second.toRelay);
    fillCache(cache, second);
    const hits = cache.hits;
    const third = await applyToMembers(
      store,
      [{ userId: user, records: [record(user, 3, "usage", 2)] }],
      { config, nowMs: NOW_MS + 2_000 },
      4,
      cache,
    );
    expect(cache.hits).toBe(hits + 1);
    expect(third.casConflicts).toBe(0);
    expect(third.leftovers).toBe(0);
    expect(third.counts.applied).toBe(1);
  });
});
