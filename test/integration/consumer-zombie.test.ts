// Goal: a zombie (a consumer that lost its partition but still holds a batch) changes nothing.
// Against the real Redis: the owner applies records; the zombie's write computed from the state
// it loaded before is refused by the version check; redone, it finds the records applied (their
// offsets are stored with the state) and writes nothing, so no credit and no ledger entry doubles.

import { applyToMembers, type MemberWork } from "@creditflow/consumer";
import { encodeState, ledgerBalanceMicros } from "@creditflow/engine";
import { type OutboxField, offsetField } from "@creditflow/member-store";
import { describe, expect, it } from "vitest";
import { usageInputRecord } from "../../services/consumer/testing/harness.ts";
import { fixture } from "../support/fixture.ts";

const fx = fixture(import.meta.url);
const { config } = fx;
const store = fx.store();
const NOW_MS = Date.UTC(2026, 10, 25, 12, 0, 0);
const record = (user: string, n: number) => usageInputRecord(user, n, NOW_MS);

describe("zombie writer", () => {
  it("is refused by the version check and, redone, finds its records applied", async () => {
    const user = "zu1";
    const ctx = { config, nowMs: NOW_MS };
    const first: MemberWork = { userId: user, records: [record(user, 0), record(user, 1)] };
    await applyToMembers(store, [first], ctx, 4);
    const before = await fx.member(user);
    expect(before.version).toBe(1);

    // The zombie loads the member (version 1) and computes its batch ...
    const zombieView = (await store.load([user])).get(user)!;
    const batch: MemberWork = { userId: user, records: [record(user, 2), record(user, 3)] };
    // ... while the new owner of the partition applies the same records first.
    const owner = await applyToMembers(store, [batch], ctx, 4);
    expect(owner.counts.applied).toBe(2);
    const afterOwner = await fx.member(user);
    expect(afterOwner.version).toBe(2);

    // The zombie's write, from its stale view, is refused and changes nothing.
    const stale = await store.write([
      {
        userId: user,
        expectedVersion: zombieView.version,
        stateText: encodeState(zombieView.state!),
        offsets: new Map([[offsetField("usage", 3), 103n]]),
        outbox: [],
      },
    ]);
    expect(stale[0]).toEqual({ ok: false, userId: user, currentVersion: 2 });
    expect(await fx.member(user)).toEqual(afterOwner);

    // Redone through the normal path, the zombie skips every record: nothing written, no entry.
    const redo = await applyToMembers(store, [batch], ctx, 4);
    expect(redo.counts).toEqual({ applied: 0, duplicate: 0, refused: 0, skipped: 2 });
    const same = (a: OutboxField, b: OutboxField) => a.field === b.field && a.userId === b.userId;
    expect(redo.toRelay.filter((e) => !owner.toRelay.some((o) => same(o, e)))).toEqual([]);
    const final = await fx.member(user);
    expect(final.version).toBe(2);
    expect(ledgerBalanceMicros(final.state!)).toBe(ledgerBalanceMicros(afterOwner.state!));
  });

  it("redoes a member whose version moved between its load and its write", async () => {
    const user = "zu2";
    const ctx = { config, nowMs: NOW_MS };
    // Two writers race on the same member with different records of two partitions.
    const a: MemberWork = { userId: user, records: [record(user, 0)] };
    const b: MemberWork = {
      userId: user,
      records: [{ ...record(user, 1), topic: "commands", partition: 3 }],
    };
    const [ra, rb] = await Promise.all([
      applyToMembers(store, [a], ctx, 8),
      applyToMembers(store, [b], ctx, 8),
    ]);
    expect(ra.counts.applied + rb.counts.applied).toBe(2);
    const m = await fx.member(user);
    expect(m.version).toBe(2);
    expect(m.state!.applied.map((r) => r.id).sort()).toEqual([`${user}-e0`, `${user}-e1`]);
    expect(Object.keys(m.offsets).sort()).toEqual(
      [offsetField("commands", 3), offsetField("usage", 3)].sort(),
    );
  });
});
