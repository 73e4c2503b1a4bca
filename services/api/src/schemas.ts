// The TypeBox schemas of every request and answer: fastify validates requests with them and the
// OpenAPI document at /docs is generated from the same objects, so the two cannot drift.
import { ID_PATTERN } from "@creditflow/contracts";
import { AGENT_TASK_KINDS, FEATURES, MAX_GRANT_MICROS } from "@creditflow/engine";
import { type Static, type TSchema, Type } from "@sinclair/typebox";

// Enums and nullables are single schemas (`enum`, `type: [t, "null"]`), not an `anyOf` of
// choices: fast-json-stringify writes an answer field of an anyOf only after validating the value
// against each choice with ajv, on every answer (more than half of the balance answer's
// serialization); for one schema it writes the value directly. ajv validates requests the same.

/** One of `values` (a string enum). */
const literals = <const T extends string>(values: readonly T[], description: string) =>
  Type.Unsafe<T>({ type: "string", enum: [...values], description });

/** `schema` (a schema with one `type`) or null; null joins an enum's values too. */
function Nullable<T extends TSchema>(schema: T) {
  const type: unknown = schema.type;
  if (typeof type !== "string") throw new Error("assertion: Nullable of a schema with one type");
  const values: unknown = schema.enum;
  return Type.Unsafe<Static<T> | null>({
    ...schema,
    type: [type, "null"],
    ...(Array.isArray(values) ? { enum: [...values, null] } : {}),
  });
}

export const Id = (description: string) =>
  Type.String({ pattern: ID_PATTERN, minLength: 1, maxLength: 128, description });
const Iso = (description: string) => Type.String({ format: "date-time", description });
const Micros = (description: string) => Type.Integer({ description });
/** Credits for display: an exact decimal string of the micro-credits (`"12.5"`). */
const Credits = (description: string) =>
  Type.String({ pattern: "^-?\\d+(\\.\\d{1,6})?$", description });

export const ErrorSchema = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: "machine code (see the API's error list)" }),
      field: Type.String({
        description: "the request field at fault; empty for the whole request",
      }),
      message: Type.String(),
    }),
  },
  { description: "every refusal" },
);

export const UserParams = Type.Object(
  { userId: Id("the member's user id") },
  { additionalProperties: false },
);

export const RevokeParams = Type.Object(
  { userId: Id("the member's user id"), grantId: Type.String({ minLength: 1, maxLength: 256 }) },
  { additionalProperties: false },
);

const FreshnessSchema = Type.Object({
  stateAt: Iso("the member state's clock: the latest time the consumer advanced it to"),
  readAt: Iso("when the API read it"),
  version: Type.Integer({ description: "the consumer's version of the member (grows each write)" }),
});

const WindowSchema = Type.Object({
  capMicros: Micros("what the tier allows inside one window"),
  usedMicros: Micros("usage inside the running window (0 when none runs)"),
  percentUsed: Type.Integer({ minimum: 0, maximum: 100 }),
  resetsAt: Nullable(Iso("when the running window ends; null when none runs")),
});

export const PauseSchema = Type.Object({
  reason: literals(["out_of_credits", "window_cap", "feature_not_in_tier"], "why tasks pause"),
  message: Type.String(),
  retryAt: Nullable(Iso("when a new task may start without upgrading")),
  nextRefreshAt: Nullable(Iso("the next refresh of the member's credits")),
  windowResetAt: Nullable(Iso("when the capped window resets")),
  upgrade: Nullable(
    Type.Object(
      { tierId: Type.String(), tierName: Type.String() },
      { description: "the way out now" },
    ),
  ),
});

export const BalanceSchema = Type.Object(
  {
    userId: Type.String(),
    tier: Type.Object({
      id: Type.String(),
      name: Type.String(),
      billing: literals(["free", "monthly", "annual"], "how the tier is paid"),
      pendingTierId: Nullable(
        Type.String({ description: "a downgrade waiting for the next reset" }),
      ),
      cancelAt: Nullable(Iso("end of the paid cycle after a cancel")),
    }),
    percent: Type.Integer({ minimum: 0, maximum: 100, description: "remaining over capacity" }),
    basisPoints: Type.Integer({ minimum: 0, maximum: 10_000 }),
    remainingMicros: Micros("credits usable now"),
    remainingCredits: Credits("the same, in credits"),
    capacityMicros: Micros("tier allowance plus every active bonus or migration grant"),
    capacityCredits: Credits("the same, in credits"),
    remainingByClass: Type.Object({
      bonusMicros: Micros("bonus credits left"),
      bonusCredits: Credits("the same, in credits"),
      subscriptionMicros: Micros("subscription credits left"),
      subscriptionCredits: Credits("the same, in credits"),
    }),
    debtMicros: Micros("carried overdraft, repaid from the next refresh"),
    bonusGrants: Type.Array(
      Type.Object({
        grantId: Type.String(),
        source: Type.String(),
        amountMicros: Micros("granted"),
        amountCredits: Credits("granted, in credits"),
        remainingMicros: Micros("left"),
        remainingCredits: Credits("left, in credits"),
        expiresAt: Nullable(Iso("when the unspent remainder is forfeited")),
      }),
      { description: "each active bonus grant, earliest expiry first" },
    ),
    nextRefreshAt: Nullable(Iso("earliest upcoming reset or refresh of any grant")),
    lowCredit: Type.Boolean(),
    lowCreditThresholdPercent: Type.Integer(),
    windows: Type.Object({
      fiveHour: Nullable(WindowSchema),
      sevenDay: Nullable(WindowSchema),
    }),
    paused: Nullable(PauseSchema),
    asOf: FreshnessSchema,
  },
  { description: "what a member sees" },
);

export const TransactionsSchema = Type.Object(
  {
    userId: Type.String(),
    source: literals(
      ["history", "live"],
      "history: ClickHouse; live: the consumer's Redis copy (history failed or lags)",
    ),
    transactions: Type.Array(
      Type.Object({
        taskId: Type.String(),
        feature: Type.String(),
        at: Iso("time of the task's latest usage"),
        creditsMicros: Micros("credits the task consumed"),
        credits: Credits("the same, in credits"),
      }),
      { maxItems: 10, description: "newest first; one per task" },
    ),
    freshness: Type.Object({
      readAt: Iso("when the API answered"),
      stateAt: Nullable(Iso("the live state's clock")),
      historyNewestAt: Nullable(Iso("newest processing time of this member in ClickHouse")),
      historyBehind: Type.Boolean({ description: "ClickHouse lacks transactions Redis has" }),
      historyError: Nullable(Type.String({ description: "why ClickHouse did not answer" })),
    }),
  },
  { description: "the last 10 transactions" },
);

export const AdmissionBodySchema = Type.Object(
  {
    userId: Id("the member about to start a task"),
    feature: literals(FEATURES, "the feature of the task"),
    taskKind: Type.Optional(
      Nullable(
        literals(AGENT_TASK_KINDS, "Agent task kind; `swarm` needs a tier with Agent Swarm"),
      ),
    ),
  },
  { additionalProperties: false },
);

export const AdmissionSchema = Type.Union([
  Type.Object({ userId: Type.String(), allowed: Type.Literal(true) }),
  Type.Composite([
    Type.Object({ userId: Type.String(), allowed: Type.Literal(false) }),
    PauseSchema,
  ]),
]);

const CommandId = Id(
  "chosen by the caller; a repeat with the same body is harmless, another body is 409",
);
const IssuedAt = Type.Optional(
  Iso("when the command was issued (default: when the API first saw this commandId)"),
);
const GrantMicros = (description: string) =>
  Type.Integer({ minimum: 1, maximum: MAX_GRANT_MICROS, description });

export const GrantBonusBodySchema = Type.Object(
  {
    commandId: CommandId,
    issuedAt: IssuedAt,
    amountMicros: GrantMicros("micro-credits granted (1 credit = 1,000,000)"),
    expiresAt: Iso("when the unspent remainder is forfeited"),
    effectiveFrom: Type.Optional(Iso("default: issuedAt")),
    source: Type.Optional(
      literals(["trial", "promotion", "purchase", "adjustment"], "default promotion"),
    ),
    priority: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 })),
    recurrence: Type.Optional(
      Nullable(literals(["5h", "7d", "1mo"], "refill period; null: one-off")),
    ),
    campaign: Type.Optional(
      Type.String({ minLength: 1, maxLength: 128, description: "for analysts" }),
    ),
  },
  { additionalProperties: false },
);

export const SubscriptionStartBodySchema = Type.Object(
  {
    commandId: CommandId,
    issuedAt: IssuedAt,
    tierId: Type.String({ minLength: 1, maxLength: 64, description: "a paid tier of the plans" }),
    billing: literals(["monthly", "annual"], "how it is paid; credits reset monthly either way"),
  },
  { additionalProperties: false },
);

export const SubscriptionChangeBodySchema = Type.Object(
  {
    commandId: CommandId,
    issuedAt: IssuedAt,
    tierId: Type.String({
      minLength: 1,
      maxLength: 64,
      description: "upgrade now, downgrade at reset",
    }),
  },
  { additionalProperties: false },
);

export const CommandOnlyBodySchema = Type.Object(
  { commandId: CommandId, issuedAt: IssuedAt },
  { additionalProperties: false },
);

export const AdjustBodySchema = Type.Object(
  {
    commandId: CommandId,
    issuedAt: IssuedAt,
    amountMicros: Type.Integer({
      minimum: -MAX_GRANT_MICROS,
      maximum: MAX_GRANT_MICROS,
      not: { const: 0 },
      description: "non-zero; positive adds a bonus grant, negative debits",
    }),
    expiresAt: Type.Optional(Nullable(Iso("required for a positive adjustment"))),
    reason: Type.String({ minLength: 1, maxLength: 500 }),
  },
  { additionalProperties: false },
);

export const MigrateBodySchema = Type.Object(
  {
    commandId: CommandId,
    issuedAt: IssuedAt,
    unusedUses: Type.Record(
      Type.String({ minLength: 1, maxLength: 64 }),
      Type.Integer({ minimum: 0, maximum: 1_000_000 }),
      {
        description: "legacy quota name -> unused uses",
      },
    ),
  },
  { additionalProperties: false },
);

export const AcceptedSchema = Type.Object(
  {
    commandId: Type.String(),
    type: Type.String({ description: "the credit command sent" }),
    userId: Type.String(),
    topic: Type.String({ description: "the Kafka topic that acknowledged it" }),
    issuedAt: Iso("the command's time (fixed by the first request with this commandId)"),
    repeat: Type.Boolean({ description: "this commandId was seen before with the same body" }),
  },
  { description: "Kafka acknowledged the command" },
);

/** Responses every authenticated route may give besides its own. */
export const REFUSALS = {
  400: ErrorSchema,
  401: ErrorSchema,
  403: ErrorSchema,
  429: ErrorSchema,
  "5xx": ErrorSchema,
} as const;

/** The balance answer as a client reads it. */
export type Balance = Static<typeof BalanceSchema>;
/** The transactions answer as a client reads it. */
export type Transactions = Static<typeof TransactionsSchema>;
/** The admission answer as a feature service reads it. */
export type AdmissionAnswer = Static<typeof AdmissionSchema>;
