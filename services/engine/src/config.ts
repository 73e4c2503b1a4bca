// Schemas and validation of the rate card and tier plans (already-parsed JSON in, typed config out).
// Reading files is the caller's job; errors name the source, the JSON path and what is wrong.

import { type Static, Type } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { type ConfigIssue, EngineError } from "./errors.ts";
import {
  DAY_MS,
  DEFAULT_DEDUPE_HORIZON_MS,
  HOUR_MS,
  MAX_BONUS_LEAD_MS,
  MAX_BONUS_LEAD_TIMES,
  MAX_DEDUPE_HORIZON_MS,
  MAX_GRANT_MICROS,
  MAX_RATE_MICROS_PER_1K,
  MIN_DEDUPE_HORIZON_MS,
} from "./limits.ts";
import { CAPABILITIES, FEATURES } from "./types.ts";

const Micros = (max: number) => Type.Integer({ minimum: 0, maximum: max });

const ModelRates = Type.Object(
  {
    inputPer1kMicros: Micros(MAX_RATE_MICROS_PER_1K),
    outputPer1kMicros: Micros(MAX_RATE_MICROS_PER_1K),
    cachedInputPer1kMicros: Micros(MAX_RATE_MICROS_PER_1K),
  },
  { additionalProperties: false },
);

const FeatureRates = Type.Object(
  { models: Type.Record(Type.String({ minLength: 1 }), ModelRates) },
  { additionalProperties: false },
);

export const RateCardSchema = Type.Object(
  {
    version: Type.String({ minLength: 1 }),
    features: Type.Object(
      Object.fromEntries(FEATURES.map((f) => [f, FeatureRates])) as Record<
        (typeof FEATURES)[number],
        typeof FeatureRates
      >,
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
export type RateCard = Static<typeof RateCardSchema>;
export type ModelRate = Static<typeof ModelRates>;

const Cap = Type.Union([Micros(MAX_GRANT_MICROS), Type.Null()]);

const TierSchema = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 64 }),
    name: Type.String({ minLength: 1 }),
    /** Higher is a bigger tier: moving to a higher rank is an upgrade. */
    rank: Type.Integer({ minimum: 0 }),
    monthlyAllowanceMicros: Type.Integer({ minimum: 1, maximum: MAX_GRANT_MICROS }),
    /** Cost allowed inside one 5-hour window; null: no cap. */
    window5hCapMicros: Cap,
    /** Cost allowed inside one 7-day window; null: no cap. */
    window7dCapMicros: Cap,
    capabilities: Type.Array(Type.Union(CAPABILITIES.map((c) => Type.Literal(c))), {
      uniqueItems: true,
    }),
    /** Low-credit flag under this percent of capacity. */
    lowCreditThresholdPercent: Type.Integer({ minimum: 0, maximum: 100 }),
  },
  { additionalProperties: false },
);
export type Tier = Static<typeof TierSchema>;

const BonusLeadTimeSchema = Type.Object(
  {
    /** Named in the notice (`leadTime`) and its id: `3d`, `24h`. */
    name: Type.String({ pattern: "^[a-z0-9_]{1,16}$" }),
    /** How long before the expiry the notice is due. */
    beforeMs: Type.Integer({ minimum: 1, maximum: MAX_BONUS_LEAD_MS }),
  },
  { additionalProperties: false },
);
export type BonusLeadTime = Static<typeof BonusLeadTimeSchema>;

/** When plans name no lead times: 3 days and 24 hours before a bonus expires. */
export const DEFAULT_BONUS_LEAD_TIMES: readonly BonusLeadTime[] = [
  { name: "3d", beforeMs: 3 * DAY_MS },
  { name: "24h", beforeMs: 24 * HOUR_MS },
];

export const PlansSchema = Type.Object(
  {
    version: Type.String({ minLength: 1 }),
    freeTierId: Type.String({ minLength: 1 }),
    /** How late usage data may arrive; expiries wait for it. */
    allowedLatenessMs: Type.Integer({ minimum: 0, maximum: 24 * 60 * 60 * 1000 }),
    /** How long an input id is remembered (default 24 hours; limits.ts). */
    dedupeHorizonMs: Type.Optional(
      Type.Integer({ minimum: MIN_DEDUPE_HORIZON_MS, maximum: MAX_DEDUPE_HORIZON_MS }),
    ),
    /** `bonus_expiring` notices before a bonus expires (default DEFAULT_BONUS_LEAD_TIMES; [] for none). */
    bonusExpiringLeadTimes: Type.Optional(
      Type.Array(BonusLeadTimeSchema, { maxItems: MAX_BONUS_LEAD_TIMES }),
    ),
    /** forgive: the shortfall is recorded and dropped; carry: repaid from the next refresh. */
    overdraft: Type.Union([Type.Literal("forgive"), Type.Literal("carry")]),
    tiers: Type.Array(TierSchema, { minItems: 1 }),
    /** Legacy quota name -> micro-credits one unused use converts to. */
    legacyConversionMicrosPerUse: Type.Record(
      Type.String({ minLength: 1 }),
      Micros(MAX_GRANT_MICROS),
    ),
  },
  { additionalProperties: false },
);
export type Plans = Static<typeof PlansSchema>;

/** The configuration every apply and query runs against. */
export interface EngineConfig {
  rateCard: RateCard;
  plans: Plans;
  /** Tiers by id (derived from plans). */
  tiersById: ReadonlyMap<string, Tier>;
  /** Tiers by rank ascending (derived from plans). */
  tiersByRank: readonly Tier[];
  /** plans.dedupeHorizonMs or its default. */
  dedupeHorizonMs: number;
  /** plans.bonusExpiringLeadTimes or their default, longest first (the earliest instant first). */
  bonusLeadTimes: readonly BonusLeadTime[];
}

const rateCardCheck = TypeCompiler.Compile(RateCardSchema);
const plansCheck = TypeCompiler.Compile(PlansSchema);

function fail(what: string, issues: ConfigIssue[]): never {
  const lines = issues.map((i) => `${i.source}: ${i.path || "/"}: ${i.message}`);
  throw new EngineError("config_invalid", `invalid ${what}:\n  ${lines.join("\n  ")}`, issues);
}

function schemaIssues(
  check: typeof rateCardCheck | typeof plansCheck,
  value: unknown,
  source: string,
): ConfigIssue[] {
  if (check.Check(value)) return [];
  const issues: ConfigIssue[] = [];
  for (const e of check.Errors(value)) {
    issues.push({ source, path: e.path, message: e.message });
    if (issues.length >= 20) break;
  }
  return issues;
}

/** Validates an already-parsed rate card; throws EngineError(config_invalid) naming file and path. */
export function parseRateCard(value: unknown, sourceName: string): RateCard {
  const issues = schemaIssues(rateCardCheck, value, sourceName);
  if (issues.length > 0) fail("rate card", issues);
  return value as RateCard;
}

/** Validates already-parsed tier plans, including cross-field rules (unique ids and ranks, free tier). */
export function parsePlans(value: unknown, sourceName: string): Plans {
  const issues = schemaIssues(plansCheck, value, sourceName);
  if (issues.length > 0) fail("plans", issues);
  const plans = value as Plans;
  const ids = new Set<string>();
  const ranks = new Set<number>();
  plans.tiers.forEach((t, i) => {
    if (ids.has(t.id))
      issues.push({
        source: sourceName,
        path: `/tiers/${i}/id`,
        message: `duplicate tier id "${t.id}"`,
      });
    if (ranks.has(t.rank))
      issues.push({
        source: sourceName,
        path: `/tiers/${i}/rank`,
        message: `duplicate rank ${t.rank}`,
      });
    ids.add(t.id);
    ranks.add(t.rank);
  });
  const free = plans.tiers.find((t) => t.id === plans.freeTierId);
  if (free === undefined) {
    issues.push({
      source: sourceName,
      path: "/freeTierId",
      message: `no tier with id "${plans.freeTierId}"`,
    });
  } else if (plans.tiers.some((t) => t.rank < free.rank)) {
    issues.push({
      source: sourceName,
      path: "/freeTierId",
      message: "the free tier must have the lowest rank",
    });
  }
  const leads = plans.bonusExpiringLeadTimes ?? [];
  leads.forEach((lead, i) => {
    if (leads.findIndex((l) => l.name === lead.name || l.beforeMs === lead.beforeMs) < i)
      issues.push({
        source: sourceName,
        path: `/bonusExpiringLeadTimes/${i}`,
        message: `lead time "${lead.name}" repeats another's name or duration`,
      });
  });
  const byRank = [...plans.tiers].sort((a, b) => a.rank - b.rank);
  for (let i = 1; i < byRank.length; i++) {
    const lower = byRank[i - 1]!;
    const higher = byRank[i]!;
    if (higher.monthlyAllowanceMicros < lower.monthlyAllowanceMicros) {
      issues.push({
        source: sourceName,
        path: `/tiers/${plans.tiers.indexOf(higher)}/monthlyAllowanceMicros`,
        message: `tier "${higher.id}" has a higher rank but a smaller allowance than "${lower.id}"`,
      });
    }
  }
  if (issues.length > 0) fail("plans", issues);
  return plans;
}

/** Builds the engine configuration from validated parts. */
export function makeConfig(rateCard: RateCard, plans: Plans): EngineConfig {
  const tiersByRank = [...plans.tiers].sort((a, b) => a.rank - b.rank);
  return {
    rateCard,
    plans,
    tiersById: new Map(plans.tiers.map((t) => [t.id, t])),
    tiersByRank,
    dedupeHorizonMs: plans.dedupeHorizonMs ?? DEFAULT_DEDUPE_HORIZON_MS,
    bonusLeadTimes: [...(plans.bonusExpiringLeadTimes ?? DEFAULT_BONUS_LEAD_TIMES)].sort(
      (a, b) => b.beforeMs - a.beforeMs,
    ),
  };
}
