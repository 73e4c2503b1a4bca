// Goal: the in-memory store the unit of work is unit-tested against
// (services/consumer/testing/memory-store.ts) answers as the Redis MemberStore does, so what
// those tests show holds for Redis. The same calls on both: a load of a member never written,
// CAS writes let through and refused, the outbox field each write answers, leftovers found at
// load in write order, release (twice), and a unit of several members applied by applyToMembers.

import { applyToMembers, type UnitStore } from "@creditflow/consumer";
import { encodeState, openMember } from "@creditflow/engine";
import { type LoadedMember, offsetField, outboxValues } from "@creditflow/member-store";
import { describe, expect, it } from "vitest";
import { usageInputRecord } from "../../services/consumer/testing/harness.ts";
import { MemoryMemberStore } from "../../services/consumer/testing/memory-store.ts";
import { fixture } from "../support/fixture.ts";

const fx = fixture(import.meta.url);
const { iso, config } = fx;
const NOW_MS = Date.UTC(2026, 10, 25, 12, 0, 0);
const ctx = { config, nowMs: NOW_MS };

/** A loaded member as plain data: its leftovers as their entries' bytes. */
function seen(m: LoadedMember | undefined): unknown {
  if (m === undefined) return undefined;
  return {
    version: m.version,
    stateText: m.stateText,
    hasState: m.state !== null,
    offsets: [...m.offsets],
    leftovers: m.leftovers.map((f) => ({
      field: f.field,
      count: f.count,
      values: outboxValues(f).map((v) => v.toString("hex")),
    })),
  };
}

/** The same calls on a store; what it answered, as plain data. */
async function script(store: UnitStore, user: string): Promise<unknown[]> {
  const answers: unknown[] = [];
  const state = (atMs: number) => encodeState(openMember(user, atMs, ctx).state);
  const o = offsetField("usage", 3);
  answers.push(seen((await store.load([user])).get(user)));
  const write = (expectedVersion: number, atMs: number, offset: bigint, outbox: string[]) =>
    store.write([
      {
        userId: user,
        expectedVersion,
        stateText: state(atMs),
        offsets: new Map([[o, offset]]),
        outbox: outbox.map((e) => Buffer.from(e)),
      },
    ]);
  const written = (rs: Awaited<ReturnType<UnitStore["write"]>>) =>
    rs.map((r) =>
      r.ok
        ? {
            ok: true,
            version: r.version,
            written:
              r.written === null
                ? null
                : { field: r.written.field, values: outboxValues(r.written).map(String) },
          }
        : r,
    );
  answers.push(written(await write(0, NOW_MS - 2_000, 100n, ["e1", "e2"])));
  answers.push(written(await write(0, NOW_MS - 1_000, 101n, ["stale"])));
  answers.push(written(await write(1, NOW_MS - 1_000, 101n, [])));
  answers.push(written(await write(2, NOW_MS, 102n, [""])));
  answers.push(seen((await store.load([user])).get(user)));
  const loaded = (await store.load([user])).get(user)!;
  await store.release(loaded.leftovers.slice(0, 1));
  await store.release(loaded.leftovers.slice(0, 1));
  answers.push(seen((await store.load([user])).get(user)));
  return answers;
}

describe("the in-memory store of the unit tests", () => {
  it("answers load, CAS write and release as the Redis store does", async () => {
    const onRedis = await script(fx.store(), "contract-1");
    const inMemory = await script(new MemoryMemberStore(), "contract-1");
    expect(inMemory).toEqual(onRedis);
    // The script saw what it is about: a refusal, and two leftovers in write order.
    expect(onRedis[2]).toEqual([{ ok: false, userId: "contract-1", currentVersion: 1 }]);
    expect(
      (onRedis[5] as { leftovers: { field: string }[] }).leftovers.map((l) => l.field),
    ).toEqual(["x:1", "x:3"]);
  });

  it("ends a unit of several members where the Redis store does", async () => {
    const users = ["cu1", "cu2", "cu3"];
    const records = users.flatMap((u, i) => [
      usageInputRecord(u, 2 * i, NOW_MS),
      usageInputRecord(u, 2 * i + 1, NOW_MS),
    ]);
    const works = () =>
      users.map((userId) => ({
        userId,
        records: records.filter((r) => r.input.userId === userId),
      }));
    const onRedis = fx.store(`${iso.keyPrefix}unit:`);
    const inMemory = new MemoryMemberStore(2);
    const a = await applyToMembers(onRedis, works(), ctx, 4);
    const b = await applyToMembers(inMemory, works(), ctx, 4);
    expect(b.counts).toEqual(a.counts);
    expect(b.toRelay.map((f) => [f.userId, f.field, f.count])).toEqual(
      a.toRelay.map((f) => [f.userId, f.field, f.count]),
    );
    const loadedA = await onRedis.load(users);
    const loadedB = await inMemory.load(users);
    for (const u of users) expect(seen(loadedB.get(u))).toEqual(seen(loadedA.get(u)));
  });
});
