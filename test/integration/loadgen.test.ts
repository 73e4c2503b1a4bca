// Goal: the load generator sends what it says against the real Kafka: the records on the topic
// are its reported events plus duplicates (and its commands), the recorded ids are exactly the
// unique events on the topic, late duplicates sit on the topic behind at least the asked number of
// newer events of their member, the feature mix is plausible, and one seed is one run.

import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { planCommands, planMembers, planUsage, runLoadgen } from "@creditflow/loadgen";
import { describe, expect, it } from "vitest";
import { fixture } from "../support/fixture.ts";

const fx = fixture(import.meta.url);
const { urls } = fx;
const topics = fx.topicNames();
const rateCard = fx.config.rateCard;
const dir = mkdtempSync(join(tmpdir(), "loadgen-test-"));

const highWaterMarks = (topic: string) => fx.topicSize(topic);

/** Every usage record on the topic (one member's in their order), decoded with the registry's schema. */
async function usageRecords(
  expected: number,
  timeoutMs = 30_000,
): Promise<Array<{ eventId: string; userId: string }>> {
  const ids: Array<{ eventId: string; userId: string }> = [];
  for (const record of await fx.readTopic(topics.usage, { expected, timeoutMs })) {
    const decoded = await fx.codec.decode("usage", record.value);
    if (!decoded.ok) throw new Error(`undecodable: ${decoded.detail}`);
    const { eventId, userId } = decoded.value as { eventId: string; userId: string };
    ids.push({ eventId, userId });
  }
  return ids;
}

describe("load generator", () => {
  it("sends what it reports: events + duplicates on the usage topic, commands on theirs", async () => {
    // Not registered beforehand: the load generator's producer registers its own schemas.
    await fx.topics(undefined, { partitions: 6, register: false });
    const recordPath = join(dir, "accepted.jsonl");
    const report = await runLoadgen({
      brokers: urls.kafkaBrokers,
      schemaRegistryUrl: urls.schemaRegistryUrl,
      rateCard,
      topics,
      users: 20,
      ratePerSecond: 200,
      durationSeconds: 3,
      seed: 42,
      duplicates: 0.02,
      late: 0.05,
      lateDuplicates: 0.5,
      lateDuplicateDistance: 20,
      withGrants: true,
      recordPath,
    });
    expect(report.failed).toBe(0);
    expect(report.events).toBe(600);
    expect(report.duplicates).toBeGreaterThan(0);
    expect(report.lateDuplicates).toBeGreaterThan(0);
    expect(report.lateDuplicates).toBeLessThan(report.duplicates);
    expect(report.lateDuplicatesAtDistance).toBeGreaterThan(0);
    expect(report.lateDuplicateMaxDistance).toBeGreaterThanOrEqual(20);
    expect(report.late).toBeGreaterThan(0);
    // Paced: about 3 s for 600 events at 200/s, not a burst.
    expect(report.elapsedMs).toBeGreaterThan(2_500);
    expect(report.achievedRate).toBeGreaterThan(150);
    expect(report.achievedRate).toBeLessThan(260);

    expect(await highWaterMarks(topics.usage)).toBe(report.events + report.duplicates);
    expect(report.commands).toBeGreaterThan(0);
    expect(report.commandsByType.grant_bonus).toBeGreaterThan(0);
    expect(await highWaterMarks(topics.commands)).toBe(report.commands);

    // The record file names every unique event once, with its cost, and every late duplicate;
    // the topic holds those ids and nothing else, each duplicate being one of them.
    const lines = readFileSync(recordPath, "utf8")
      .trim()
      .split("\n")
      .map(
        (l) =>
          JSON.parse(l) as {
            id: string;
            userId: string;
            costMicros: number;
            lateDuplicate?: true;
            newerOfMember?: number;
          },
      );
    const recorded = lines.filter((r) => r.lateDuplicate !== true);
    const recordedLate = lines.filter((r) => r.lateDuplicate === true);
    expect(recordedLate).toHaveLength(report.lateDuplicates);
    expect(Math.max(...recordedLate.map((r) => r.newerOfMember!))).toBe(
      report.lateDuplicateMaxDistance,
    );
    const recordedIds = new Set(recorded.map((r) => r.id));
    expect(recordedLate.every((r) => recordedIds.has(r.id))).toBe(true);
    expect(recorded).toHaveLength(report.events);
    expect(recorded.every((r) => Number.isSafeInteger(r.costMicros) && r.costMicros > 0)).toBe(
      true,
    );
    const onTopic = await usageRecords(report.events + report.duplicates);
    expect(onTopic).toHaveLength(report.events + report.duplicates);
    expect(new Set(onTopic.map((r) => r.eventId))).toEqual(new Set(recorded.map((r) => r.id)));
    // On the topic, a member's records keep their order: the late duplicates come after at least
    // 20 newer events of their member, as reported.
    const countOf = new Map<string, number>();
    const countAtFirst = new Map<string, number>();
    const distances: number[] = [];
    for (const { eventId, userId } of onTopic) {
      const first = countAtFirst.get(eventId);
      if (first !== undefined) {
        distances.push((countOf.get(userId) ?? 0) - first);
        continue;
      }
      const count = (countOf.get(userId) ?? 0) + 1;
      countOf.set(userId, count);
      countAtFirst.set(eventId, count);
    }
    expect(distances).toHaveLength(report.duplicates);
    expect(distances.filter((d) => d >= 20).length).toBeGreaterThanOrEqual(
      report.lateDuplicatesAtDistance,
    );
    expect(Math.max(...distances)).toBeGreaterThanOrEqual(report.lateDuplicateMaxDistance);
    expect(recorded.reduce((s, r) => s + r.costMicros, 0)).toBe(
      Object.values(report.perFeature).reduce((s, f) => s + f.costMicros, 0),
    );

    // A plausible mix: chat most, code next, agent fewer but heavier per event, image and claw few.
    const f = report.perFeature;
    expect(f.chat.events).toBeGreaterThan(f.code.events);
    expect(f.code.events).toBeGreaterThan(f.agent.events);
    expect(f.agent.events).toBeGreaterThan(Math.max(f.image.events, f.claw.events));
    expect(f.image.events + f.claw.events).toBeLessThan(report.events * 0.2);
    expect(f.agent.costMicros / f.agent.events).toBeGreaterThan(
      (3 * f.chat.costMicros) / f.chat.events,
    );
  });

  it("gives the same events for the same seed, and others for another seed", () => {
    const o = {
      users: 20,
      events: 2_000,
      ratePerSecond: 200,
      seed: 9,
      startMs: Date.UTC(2026, 10, 25, 12),
      duplicates: 0.02,
      late: 0.05,
    };
    const run = (seed: number) => {
      const members = planMembers({ ...o, seed });
      return {
        commands: planCommands(members, seed, o.startMs),
        sends: [...planUsage({ ...o, seed }, members)],
      };
    };
    const a = run(9);
    expect(run(9)).toEqual(a);
    const b = run(10);
    expect(b.sends.map((s) => s.input.inputTokens)).not.toEqual(
      a.sends.map((s) => s.input.inputTokens),
    );
    // Deep research sits far above chat (heavy tails, many steps).
    const tokensOf = (pred: (s: (typeof a.sends)[number]) => boolean) => {
      const xs = a.sends.filter((s) => !s.duplicate && pred(s)).map((s) => s.input.inputTokens);
      return xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0;
    };
    expect(tokensOf((s) => s.input.taskKind === "deep_research")).toBeGreaterThan(
      10 * tokensOf((s) => s.input.feature === "chat"),
    );
    // Late events are at most 4 minutes before their send time; duplicates repeat an earlier id.
    const firstSeen = new Set<string>();
    for (const s of a.sends) {
      const lateness = o.startMs + s.offsetMs - s.input.occurredAt;
      expect(lateness).toBeGreaterThanOrEqual(0);
      expect(lateness).toBeLessThanOrEqual(4 * 60_000);
      if (s.duplicate) expect(firstSeen.has(s.input.eventId)).toBe(true);
      firstSeen.add(s.input.eventId);
    }
  });
});
