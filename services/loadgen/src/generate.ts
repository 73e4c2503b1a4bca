// The load generator's plan, pure and seeded: members (tiers, bonus grants, subscriptions as
// credit commands) and a stream of usage events with a realistic mix (features in plausible
// proportions, heavy-tailed token counts, tasks of several events, a few exact duplicates (some
// of them held back for hundreds of newer events of their member) and late events). No clock and
// no I/O: the start time is passed in, so one seed is one run.
import type { UsageInput } from "@creditflow/contracts";
import {
  type AgentTaskKind,
  type CreditCommand,
  type Feature,
  MAX_TOKENS_PER_EVENT,
  MICROS_PER_CREDIT,
} from "@creditflow/engine";
import { intBetween, lognormalInt, pick, type Random, seededRandom } from "./random.ts";

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/** Largest run the generator plans (a named limit; a plan is lazy, so memory stays small). */
export const MAX_USERS = 1_000_000;
/** Late events happen up to this long before their send time (under the 5-minute lateness). */
export const MAX_LATENESS_MS = 4 * MINUTE_MS;
const MIN_LATENESS_MS = 10_000;
/** A duplicate is sent again within this many later events. */
const MAX_DUPLICATE_DISTANCE = 50;
/** A late duplicate waits for at least this many newer events of its member, by default. */
export const DEFAULT_LATE_DUPLICATE_DISTANCE = 300;
/** Largest distance a late duplicate may be asked to wait (held copies stay in memory). */
export const MAX_LATE_DUPLICATE_DISTANCE = 100_000;
/**
 * A late duplicate is taken from a member expected to send this many times the asked distance in
 * the rest of the run (its share of activity times the events left), and waits for 1 to 1.5 times
 * that distance: so nearly all reach it before the end.
 */
const LATE_DUPLICATE_HEADROOM = 2;

export interface PlanOptions {
  users: number;
  /** Unique usage events in the run (duplicates come on top). */
  events: number;
  /** Paces the events' times: event k happens at startMs + k / rate. */
  ratePerSecond: number;
  seed: number;
  startMs: number;
  /** Fraction of events sent twice (same id, same content). */
  duplicates: number;
  /** Fraction of events whose occurredAt is up to 4 minutes before their send time. */
  late: number;
  /**
   * Share of the duplicates sent late (default 0): each is held until its member has sent
   * between lateDuplicateDistance and 1.5 times that many newer events, or the run ends. They
   * copy events of members active enough to get there (the heavy users).
   */
  lateDuplicates?: number;
  /** Newer events of the same member a late duplicate waits for, at least (default 300). */
  lateDuplicateDistance?: number;
  /** Prefix of every id of the run; default derived from seed and start time. */
  runId?: string;
}

export type Tier = "free" | "plus" | "pro" | "ultra";

export interface Member {
  userId: string;
  tier: Tier;
  /** Relative activity (lognormal: a few power users do much of the usage). */
  activity: number;
}

/** One send: a unique event, or the exact duplicate of an earlier one. */
export interface PlannedSend {
  /** When to send, from the start of the run. */
  offsetMs: number;
  input: UsageInput & { occurredAt: number };
  duplicate: boolean;
  late: boolean;
  /** A duplicate held back for newer events of its member (PlanOptions.lateDuplicates). */
  lateDuplicate: boolean;
  /** For a duplicate: unique events of the same member sent between the original and it; else 0. */
  newerOfMember: number;
}

/** A kind of task: how many events it has and the tokens of each. */
interface TaskShape {
  events: [min: number, max: number];
  /** Median tokens per event and the spread of their log. */
  input: [median: number, sigma: number];
  output: [median: number, sigma: number];
  /** Share of input served from the prompt cache on a task's later events. */
  cached: [min: number, max: number];
}

/**
 * Per-event token shapes. With the default rate card and free tier (100 credits a month) they
 * land on the product rules' examples: a PPT about 1-2%, deep research 5-10%, a piece of code 0.5-2%.
 */
const SHAPES: Record<Exclude<Feature, "agent">, TaskShape> = {
  chat: { events: [1, 3], input: [1_500, 0.9], output: [400, 0.8], cached: [0.3, 0.8] },
  code: { events: [2, 8], input: [14_000, 0.8], output: [2_000, 0.9], cached: [0.3, 0.7] },
  claw: { events: [1, 4], input: [4_000, 0.9], output: [800, 0.9], cached: [0.2, 0.6] },
  image: { events: [1, 2], input: [300, 0.5], output: [4_000, 0.3], cached: [0, 0] },
};

const AGENT_SHAPES: Record<AgentTaskKind, TaskShape> = {
  website: { events: [4, 10], input: [20_000, 0.7], output: [5_000, 0.7], cached: [0.3, 0.7] },
  docs: { events: [3, 8], input: [15_000, 0.7], output: [2_000, 0.7], cached: [0.3, 0.7] },
  ppt: { events: [4, 8], input: [12_000, 0.6], output: [2_500, 0.6], cached: [0.3, 0.7] },
  spreadsheet: { events: [3, 7], input: [12_000, 0.7], output: [2_000, 0.7], cached: [0.3, 0.7] },
  deep_research: {
    events: [8, 14],
    input: [40_000, 0.7],
    output: [4_500, 0.6],
    cached: [0.1, 0.4],
  },
  swarm: { events: [10, 20], input: [30_000, 0.8], output: [5_000, 0.8], cached: [0.2, 0.6] },
};

/** A task's models by weight: KIMI's mix unless its kind (or feature) is in MODELS. */
const KIMI = { "kimi-k2": 0.7, "kimi-k2-thinking": 0.2, "kimi-k2-turbo": 0.1 } as const;
const MODELS: Partial<Record<Feature | AgentTaskKind, Readonly<Record<string, number>>>> = {
  image: { "image-1": 1 },
  deep_research: { "kimi-k2": 0.4, "kimi-k2-thinking": 0.6 },
};

const AGENT_KIND_WEIGHTS: Record<AgentTaskKind, number> = {
  website: 0.2,
  docs: 0.2,
  ppt: 0.25,
  spreadsheet: 0.15,
  deep_research: 0.15,
  swarm: 0.05,
};

/** Target share of usage events per feature: chat most, code next, agent fewer, image and claw few. */
export const EVENT_SHARE: Readonly<Record<Feature, number>> = {
  chat: 0.45,
  code: 0.28,
  agent: 0.17,
  image: 0.05,
  claw: 0.05,
};

const meanEvents = (s: TaskShape) => (s.events[0] + s.events[1]) / 2;
const agentMeanEvents = Object.entries(AGENT_KIND_WEIGHTS).reduce(
  (sum, [kind, w]) => sum + w * meanEvents(AGENT_SHAPES[kind as AgentTaskKind]),
  0,
);
/** Tasks are drawn by feature in proportion to share / mean events per task. */
const TASK_WEIGHTS: Record<Feature, number> = {
  chat: EVENT_SHARE.chat / meanEvents(SHAPES.chat),
  code: EVENT_SHARE.code / meanEvents(SHAPES.code),
  agent: EVENT_SHARE.agent / agentMeanEvents,
  image: EVENT_SHARE.image / meanEvents(SHAPES.image),
  claw: EVENT_SHARE.claw / meanEvents(SHAPES.claw),
};

const TIER_WEIGHTS: Record<Tier, number> = { free: 0.6, plus: 0.25, pro: 0.12, ultra: 0.03 };

export function defaultRunId(seed: number, startMs: number): string {
  return `lg${seed}-${startMs.toString(36)}`;
}

/** The members of a run, the same for the same seed. */
export function planMembers(
  o: Pick<PlanOptions, "users" | "seed" | "startMs" | "runId">,
): Member[] {
  const random = seededRandom(o.seed ^ 0x5eed_0001);
  const runId = o.runId ?? defaultRunId(o.seed, o.startMs);
  return Array.from({ length: o.users }, (_, i) => ({
    userId: `${runId}-u${i}`,
    tier: pick(random, TIER_WEIGHTS),
    activity: lognormalInt(random, 100, 1.0, 100_000),
  }));
}

/**
 * The credit commands that set members up: a subscription for paid tiers, a trial grant for
 * many (7 days), a promotion for some (30 days). Ids derive from the user, so a re-send is a
 * duplicate the consumer ignores.
 */
export function planCommands(members: Member[], seed: number, startMs: number): CreditCommand[] {
  const random = seededRandom(seed ^ 0x5eed_0002);
  const commands: CreditCommand[] = [];
  const effectiveFromMs = startMs - DAY_MS;
  /** A bonus grant (id `<user>-<id>`) of whole credits, effective a day before the start. */
  const bonus = (
    m: Member,
    g: {
      id: string;
      source: "trial" | "promotion";
      credits: number;
      days: number;
      priority: number;
    },
  ): CreditCommand => ({
    type: "grant_bonus",
    id: `${m.userId}-${g.id}`,
    userId: m.userId,
    atMs: startMs,
    source: g.source,
    amountMicros: g.credits * MICROS_PER_CREDIT,
    effectiveFromMs,
    expiresAtMs: effectiveFromMs + g.days * DAY_MS,
    priority: g.priority,
    recurrence: null,
  });
  for (const m of members) {
    if (m.tier !== "free") {
      commands.push({
        type: "subscription_start",
        id: `${m.userId}-sub`,
        userId: m.userId,
        atMs: startMs,
        tierId: m.tier,
        billing: random() < 0.8 ? "monthly" : "annual",
      });
    }
    if (random() < 0.6) {
      const credits = intBetween(random, 10, 50);
      commands.push(bonus(m, { id: "trial", source: "trial", credits, days: 7, priority: 0 }));
    }
    if (random() < 0.3) {
      const credits = intBetween(random, 5, 20);
      commands.push(bonus(m, { id: "promo", source: "promotion", credits, days: 30, priority: 1 }));
    }
  }
  return commands;
}

interface OpenTask {
  taskId: string;
  userId: string;
  /** The member's index in the run's members. */
  member: number;
  feature: Feature;
  taskKind: AgentTaskKind | null;
  shape: TaskShape;
  model: string;
  remaining: number;
  step: number;
}

/** A member's index drawn in proportion to activity (binary search over cumulative weights). */
function memberPicker(members: Member[], random: Random): () => number {
  const cumulative: number[] = [];
  let total = 0;
  for (const m of members) {
    total += m.activity;
    cumulative.push(total);
  }
  return () => {
    const r = random() * total;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! > r) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
}

/** A copy of a sent event waiting for its turn. */
interface HeldCopy {
  input: UsageInput & { occurredAt: number };
  member: number;
  /** The member's count of unique events when the original was sent (the original included). */
  sentAtCount: number;
  /** For a late duplicate: the member's count of unique events that releases it. */
  releaseAtCount: number;
}

/**
 * The sends of a run, in order, lazily: unique events paced at the rate, each possibly late,
 * exact duplicates of some sent again a few events later, and (lateDuplicates) a share of the
 * duplicates held until their member has sent hundreds of newer events.
 */
export function* planUsage(o: PlanOptions, members: Member[]): Generator<PlannedSend> {
  if (!(members.length > 0)) throw new Error("assertion: a run has at least one member");
  const lateShare = o.lateDuplicates ?? 0;
  const lateDistance = o.lateDuplicateDistance ?? DEFAULT_LATE_DUPLICATE_DISTANCE;
  if (!(lateShare >= 0 && lateShare <= 1))
    throw new RangeError(`lateDuplicates: a share in [0, 1] (got ${lateShare})`);
  if (
    !Number.isSafeInteger(lateDistance) ||
    lateDistance < 1 ||
    lateDistance > MAX_LATE_DUPLICATE_DISTANCE
  )
    throw new RangeError(
      `lateDuplicateDistance: an integer in [1, ${MAX_LATE_DUPLICATE_DISTANCE}] (got ${lateDistance})`,
    );
  const random = seededRandom(o.seed ^ 0x5eed_0003);
  const runId = o.runId ?? defaultRunId(o.seed, o.startMs);
  const nextMember = memberPicker(members, random);
  let taskCount = 0;
  const openTask = (): OpenTask => {
    const member = nextMember();
    const feature = pick(random, TASK_WEIGHTS);
    const taskKind = feature === "agent" ? pick(random, AGENT_KIND_WEIGHTS) : null;
    const shape =
      taskKind === null ? SHAPES[feature as Exclude<Feature, "agent">] : AGENT_SHAPES[taskKind];
    return {
      taskId: `${runId}-t${taskCount++}`,
      userId: members[member]!.userId,
      member,
      feature,
      taskKind,
      shape,
      model: pick(random, MODELS[taskKind ?? feature] ?? KIMI),
      remaining: intBetween(random, shape.events[0], shape.events[1]),
      step: 0,
    };
  };
  // Tasks in progress at once: events of several tasks interleave, as in production.
  const open = Array.from(
    { length: Math.min(64, Math.max(1, Math.ceil(members.length / 2))) },
    openTask,
  );
  const dueDuplicates = new Map<number, HeldCopy[]>();
  /** Unique events each member has sent so far. */
  const memberEvents = new Uint32Array(members.length);
  /** Late duplicates by member, waiting for their member's newer events. */
  const heldLate = new Map<number, HeldCopy[]>();
  // Late duplicates copy events of members active enough to reach the distance: a member is,
  // while its share of the events left is at least LATE_DUPLICATE_HEADROOM times the distance,
  // which gives it about share * events - headroom * distance such events. Their expected total
  // sets the chance that one of them is copied, so the run gets its share of late duplicates.
  // When those are too few (a short run), the rest copy any event: such a copy goes out when
  // its member reaches the distance, or at the end of the run, nearer.
  const totalActivity = members.reduce((sum, m) => sum + m.activity, 0);
  const needed = LATE_DUPLICATE_HEADROOM * lateDistance;
  const activeEnough = (member: number, k: number) =>
    ((o.events - k - 1) * members[member]!.activity) / totalActivity >= needed;
  const lateWanted = o.events * o.duplicates * lateShare;
  const eligibleEvents = members.reduce(
    (sum, m) => sum + Math.max(0, (o.events * m.activity) / totalActivity - needed),
    0,
  );
  const lateChance = eligibleEvents > 0 ? Math.min(1, lateWanted / eligibleEvents) : 0;
  const fallbackChance = Math.max(0, lateWanted - eligibleEvents) / o.events;
  const copySend = (c: HeldCopy, offsetMs: number, lateDuplicate: boolean): PlannedSend => ({
    offsetMs,
    input: c.input,
    duplicate: true,
    late: false,
    lateDuplicate,
    newerOfMember: memberEvents[c.member]! - c.sentAtCount,
  });

  for (let k = 0; k < o.events; k++) {
    const offsetMs = Math.floor((k * 1000) / o.ratePerSecond);
    for (const c of dueDuplicates.get(k) ?? []) yield copySend(c, offsetMs, false);
    dueDuplicates.delete(k);

    const slot = Math.floor(random() * open.length);
    const task = open[slot]!;
    const { shape } = task;
    const inputTokens = lognormalInt(random, shape.input[0], shape.input[1], MAX_TOKENS_PER_EVENT);
    const cachedShare =
      task.step === 0 ? 0 : shape.cached[0] + random() * (shape.cached[1] - shape.cached[0]);
    const late = random() < o.late;
    const lateByMs = late ? intBetween(random, MIN_LATENESS_MS, MAX_LATENESS_MS) : 0;
    const input: UsageInput & { occurredAt: number } = {
      eventId: `${runId}-e${k}`,
      userId: task.userId,
      taskId: task.taskId,
      feature: task.feature,
      taskKind: task.taskKind,
      model: task.model,
      inputTokens,
      outputTokens: lognormalInt(random, shape.output[0], shape.output[1], MAX_TOKENS_PER_EVENT),
      cachedInputTokens: Math.round(inputTokens * cachedShare),
      occurredAt: o.startMs + offsetMs - lateByMs,
    };
    yield { offsetMs, input, duplicate: false, late, lateDuplicate: false, newerOfMember: 0 };
    const member = task.member;
    const count = ++memberEvents[member]!;

    // Late duplicates of this member whose newer events are now enough.
    const waiting = heldLate.get(member);
    if (waiting !== undefined) {
      const ready = waiting.filter((c) => c.releaseAtCount <= count);
      if (ready.length > 0) {
        const rest = waiting.filter((c) => c.releaseAtCount > count);
        if (rest.length === 0) heldLate.delete(member);
        else heldLate.set(member, rest);
        for (const c of ready) yield copySend(c, offsetMs, true);
      }
    }

    // Of the duplicates drawn here, the late share is left out: late ones are drawn below.
    if (random() < o.duplicates && !(lateShare > 0 && random() < lateShare)) {
      const at = k + intBetween(random, 1, MAX_DUPLICATE_DISTANCE);
      const list = dueDuplicates.get(at) ?? [];
      if (list.length === 0) dueDuplicates.set(at, list);
      list.push({ input, member, sentAtCount: count, releaseAtCount: 0 });
    }
    if (
      lateShare > 0 &&
      ((lateChance > 0 && activeEnough(member, k) && random() < lateChance) ||
        (fallbackChance > 0 && random() < fallbackChance))
    ) {
      const distance = lateDistance + intBetween(random, 0, Math.floor(lateDistance / 2));
      const list = heldLate.get(member) ?? [];
      if (list.length === 0) heldLate.set(member, list);
      list.push({ input, member, sentAtCount: count, releaseAtCount: count + distance });
    }
    task.step++;
    task.remaining--;
    if (task.remaining === 0) open[slot] = openTask();
  }
  // Duplicates due after the last event go out at the end, then late ones still held.
  const endMs = Math.floor((o.events * 1000) / o.ratePerSecond);
  for (const at of [...dueDuplicates.keys()].sort((a, b) => a - b)) {
    for (const c of dueDuplicates.get(at)!) yield copySend(c, endMs, false);
  }
  for (const c of [...heldLate.values()].flat()) yield copySend(c, endMs, true);
}
