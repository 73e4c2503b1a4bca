// Microbenchmark of the credit engine: applies per second for a mix of usage events over members
// holding 1, 5 and 50 grants, in memory and through the Redis codec (decode, apply, encode), next
// to baselines measured in the same run; and the encoded state sizes. Prints markdown tables.
//   node test/bench/engine.bench.ts
// Env: BENCH_EVENTS (default 300000 per case), BENCH_MEMBERS (default 1000), BENCH_REPEAT (default 3).
import {
  apply,
  decodeState,
  type EngineContext,
  encodeState,
  type MemberState,
  MICROS_PER_CREDIT,
  openMember,
  type UsageEvent,
} from "@creditflow/engine";
import { seededRandom } from "@creditflow/loadgen";
import { loadConfig } from "../../services/consumer/testing/shipped-config.ts";

const eventsPerCase = Number(process.env.BENCH_EVENTS ?? 300_000);
const memberCount = Number(process.env.BENCH_MEMBERS ?? 1_000);
const repeat = Number(process.env.BENCH_REPEAT ?? 3);

const config = loadConfig();

const T0 = Date.UTC(2026, 0, 10);
const DAY = 86_400_000;

/** A member on Pro with `grants` grants in all (the tier grant plus long-lived bonuses). */
function member(userId: string, grants: number): MemberState {
  const ctx: EngineContext = { config, nowMs: T0 };
  let s = openMember(userId, T0, ctx).state;
  s = apply(
    s,
    {
      type: "subscription_start",
      id: `${userId}-sub`,
      userId,
      atMs: T0,
      tierId: "pro",
      billing: "monthly",
    },
    ctx,
  ).state;
  for (let i = 1; i < grants; i++) {
    const r = apply(
      s,
      {
        type: "grant_bonus",
        id: `${userId}-promo-${i}`,
        userId,
        atMs: T0,
        source: "promotion",
        amountMicros: 1_000 * MICROS_PER_CREDIT,
        effectiveFromMs: T0,
        expiresAtMs: T0 + (30 + i) * DAY,
        priority: i % 3,
        recurrence: null,
      },
      ctx,
    );
    s = r.state;
  }
  return s;
}

const MIX = [
  { feature: "chat", taskKind: null, model: "kimi-k2", input: 2_000, output: 500, cached: 4_000 },
  {
    feature: "code",
    taskKind: null,
    model: "kimi-k2",
    input: 8_000,
    output: 1_500,
    cached: 20_000,
  },
  {
    feature: "agent",
    taskKind: "ppt",
    model: "kimi-k2",
    input: 12_000,
    output: 3_000,
    cached: 24_000,
  },
  {
    feature: "agent",
    taskKind: "deep_research",
    model: "kimi-k2-thinking",
    input: 40_000,
    output: 3_000,
    cached: 60_000,
  },
  { feature: "image", taskKind: null, model: "image-1", input: 300, output: 4_000, cached: 0 },
] as const;

/** The events of one case: usage steps of tasks spread over the members, one second apart. */
function events(prefix: string, n: number): UsageEvent[] {
  // Seeded: the same run every time.
  const next = seededRandom(7);
  const out: UsageEvent[] = [];
  for (let i = 0; i < n; i++) {
    const m = MIX[Math.floor(next() * MIX.length)]!;
    const user = `${prefix}-u${i % memberCount}`;
    out.push({
      type: "usage",
      id: `${prefix}-e${i}`,
      userId: user,
      taskId: `${user}-t${Math.floor(i / (memberCount * 4))}`,
      feature: m.feature,
      taskKind: m.taskKind,
      model: m.model,
      inputTokens: Math.floor(m.input * (0.5 + next())),
      outputTokens: Math.floor(m.output * (0.5 + next())),
      cachedInputTokens: Math.floor(m.cached * (0.5 + next())),
      eventAtMs: T0 + 60_000 + Math.floor(i / 10),
    });
  }
  return out;
}

type Row = { name: string; opsPerSec: number; opsPerCpuSec: number; note: string };

/** The process's CPU time in seconds (user + system; GC helper threads included). */
function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * Best of `repeat` runs of `body` over `n` operations (each after an untimed `setup`), after one
 * untimed warm-up run (the first case measured would otherwise pay for the JIT and the heap
 * growing): operations per second of wall time, and per second of the process's CPU time (on a
 * shared machine the wall time also counts the time other processes held the core).
 */
function measure(
  n: number,
  body: () => void,
  setup: () => void = () => {},
): { wall: number; cpu: number } {
  let wall = 0;
  let cpu = 0;
  for (let r = -1; r < repeat; r++) {
    setup();
    const c = cpuSeconds();
    const t = process.hrtime.bigint();
    body();
    const seconds = Number(process.hrtime.bigint() - t) / 1e9;
    const cpuUsed = cpuSeconds() - c;
    if (r < 0) continue;
    wall = Math.max(wall, n / seconds);
    cpu = Math.max(cpu, n / cpuUsed);
  }
  return { wall, cpu };
}

const rows: Row[] = [];
/** A row of the table: a case's measure (see measure) and its note. */
function record(name: string, measured: { wall: number; cpu: number }, note: string): void {
  rows.push({ name, opsPerSec: measured.wall, opsPerCpuSec: measured.cpu, note });
}
const sizes: { grants: number; codecBytes: number; jsonBytes: number }[] = [];

for (const grants of [1, 5, 50]) {
  const prefix = `g${grants}`;
  const grantsLabel = `${grants} grant${grants > 1 ? "s" : ""}`;
  const evs = events(prefix, eventsPerCase);
  const fresh = () => {
    const states = new Map<string, MemberState>();
    for (let i = 0; i < memberCount; i++)
      states.set(`${prefix}-u${i}`, member(`${prefix}-u${i}`, grants));
    return states;
  };

  // In memory: the engine alone.
  let states = fresh();
  const inMemory = measure(
    evs.length,
    () => {
      for (const e of evs) {
        const ctx: EngineContext = { config, nowMs: e.eventAtMs };
        const r = apply(states.get(e.userId)!, e, ctx);
        states.set(e.userId, r.state);
      }
    },
    () => {
      states = fresh();
    },
  );
  record(`apply, ${grantsLabel}`, inMemory, "state in memory");

  // The consumer's path: decode the stored state, apply, encode it back.
  const stored = new Map<string, string>();
  // The codec path on a third of the events (same mix), to keep the run short.
  const codecEvents = evs.slice(0, Math.ceil(evs.length / 3));
  const viaCodec = measure(
    codecEvents.length,
    () => {
      for (const e of codecEvents) {
        const ctx: EngineContext = { config, nowMs: e.eventAtMs };
        const r = apply(decodeState(stored.get(e.userId)!), e, ctx);
        stored.set(e.userId, encodeState(r.state));
      }
    },
    () => {
      for (const [k, s] of fresh()) stored.set(k, encodeState(s));
    },
  );
  record(`decode + apply + encode, ${grantsLabel}`, viaCodec, "as the consumer does");

  // Baseline in the same run: a JSON round trip of the same state per event (no rules at all).
  const plain = new Map<string, string>();
  // (On a tenth of the events: it is slow, and a rate is a rate.)
  const baselineEvents = evs.slice(0, Math.ceil(evs.length / 10));
  const jsonRoundTrip = measure(
    baselineEvents.length,
    () => {
      for (const e of baselineEvents) {
        plain.set(e.userId, JSON.stringify(JSON.parse(plain.get(e.userId)!)));
      }
    },
    () => {
      for (const [k, s] of states) plain.set(k, JSON.stringify(s));
    },
  );
  record(`baseline: JSON.parse + JSON.stringify, ${grantsLabel}`, jsonRoundTrip, "no rules");

  const sample = states.get(`${prefix}-u0`)!;
  sizes.push({
    grants,
    codecBytes: Buffer.byteLength(encodeState(sample)),
    jsonBytes: Buffer.byteLength(JSON.stringify(sample)),
  });
}

// Baseline: a no-op call through the same loop shape.
const evs = events("noop", eventsPerCase);
let sink = 0;
const noop = measure(evs.length, () => {
  for (const e of evs) sink += e.inputTokens & 1;
});
record(
  "baseline: loop over the events, no apply",
  noop,
  String(sink % 2) === "x" ? "" : "loop cost",
);

// A heavy member: 10,000 usage events in 24 hours (one every 8.64 s), each through the codec as
// the consumer does when it holds one record of the member per round (the worst case): every id
// stays inside the duplicate horizon, so the member's memory grows to all 10,000.
const HEAVY_EVENTS = 10_000;
const heavyEvents = events("heavy", HEAVY_EVENTS).map((e, i) => ({
  ...e,
  userId: "heavy-u0",
  taskId: `heavy-t${Math.floor(i / 4)}`,
  eventAtMs: T0 + 60_000 + Math.floor((i * DAY) / HEAVY_EVENTS),
}));
let heavyText = "";
let heavyAt64 = 0;
const heavy = measure(
  heavyEvents.length,
  () => {
    heavyEvents.forEach((e, i) => {
      const ctx: EngineContext = { config, nowMs: e.eventAtMs };
      heavyText = encodeState(apply(decodeState(heavyText), e, ctx).state);
      if (i === 63) heavyAt64 = heavyText.length;
    });
  },
  () => {
    heavyText = encodeState(member("heavy-u0", 5));
  },
);
record(
  `decode + apply + encode, one member, ${fmt(HEAVY_EVENTS)} events in 24 h`,
  heavy,
  "every id inside the horizon",
);
const heavyIds = HEAVY_EVENTS - 64;

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}
const common = rows.find((r) => r.name === "apply, 5 grants")!.opsPerSec;
const commonCases = rows.filter((r) => r.name === "apply, 1 grant" || r.name === "apply, 5 grants");
const lowest = Math.min(...commonCases.map((r) => r.opsPerSec));
console.log(
  `\n## Engine: applies per second (node ${process.version}, one core, best of ${repeat} after a warm-up run, ${fmt(eventsPerCase)} events over ${fmt(memberCount)} members per case)\n`,
);
console.log("| case | ops/s | ops per CPU-second | vs apply, 5 grants | note |");
console.log("|---|---:|---:|---:|---|");
for (const r of rows)
  console.log(
    `| ${r.name} | ${fmt(r.opsPerSec)} | ${fmt(r.opsPerCpuSec)} | ${(r.opsPerSec / common).toFixed(2)}x | ${r.note} |`,
  );
console.log(
  `\nTarget: > 200,000 applies/s for the common case (1 and 5 grants, wall time): ${lowest > 200_000 ? "met" : "NOT met"}.`,
);
console.log("\n## Stored state size (after the member's memory of recent ids is full)\n");
console.log("| grants | encodeState bytes | JSON.stringify bytes | ratio |");
console.log("|---:|---:|---:|---:|");
for (const s of sizes)
  console.log(
    `| ${s.grants} | ${fmt(s.codecBytes)} | ${fmt(s.jsonBytes)} | ${(s.codecBytes / s.jsonBytes).toFixed(2)} |`,
  );
console.log(`\n## A heavy member's stored state (${fmt(HEAVY_EVENTS)} events in 24 h, 5 grants)\n`);
console.log("| after | encodeState bytes | bytes per remembered id past the first 64 |");
console.log("|---|---:|---:|");
console.log(`| 64 events | ${fmt(heavyAt64)} | |`);
console.log(
  `| ${fmt(HEAVY_EVENTS)} events | ${fmt(heavyText.length)} | ${((heavyText.length - heavyAt64) / heavyIds).toFixed(1)} |`,
);
