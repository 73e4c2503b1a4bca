// The ingest's options and named limits, validated once at start-up (TypeBox): a bad value
// stops the service before it listens, with the field named.
import type { TopicNames } from "@creditflow/contracts";
import {
  DEFAULT_DEDUPE_HORIZON_MS,
  MAX_DEDUPE_HORIZON_MS,
  MIN_DEDUPE_HORIZON_MS,
  type RateCard,
} from "@creditflow/engine";
import {
  checkNamedTokens,
  type NamedToken,
  parseNamedTokens,
  resolveNamedLimits,
} from "@creditflow/http-service";
import type { ProducerLimits } from "@creditflow/producer";
import { type Static, Type } from "@sinclair/typebox";
import type { Logger } from "pino";
import { IngestOptionError } from "./errors.ts";

const MiB = 1024 * 1024;

export const LimitsSchema = Type.Object(
  {
    /** Events in one `{ "events": [...] }` batch; more is refused with 413 before validation. */
    maxBatchEvents: Type.Integer({ minimum: 1, maximum: 10_000 }),
    /** Bytes of one request body; more is refused with 413 while reading. */
    maxBodyBytes: Type.Integer({ minimum: 1024, maximum: 16 * MiB }),
    /** Service tokens configured at once. */
    maxTokens: Type.Integer({ minimum: 1, maximum: 1_000 }),
  },
  { additionalProperties: false },
);
export type IngestLimits = Static<typeof LimitsSchema>;

export const DEFAULT_INGEST_LIMITS: IngestLimits = {
  maxBatchEvents: 1_000,
  maxBodyBytes: 1 * MiB,
  maxTokens: 100,
};

/** A service token: its name becomes the `service` of the events it sends (unless given). */
export type ServiceToken = NamedToken;

export interface IngestOptions {
  brokers: string[];
  schemaRegistryUrl: string;
  rateCard: RateCard;
  tokens: ServiceToken[];
  topics?: TopicNames;
  limits?: Partial<IngestLimits>;
  /** Passed to the producer library (batching, back-pressure). */
  producerLimits?: Partial<ProducerLimits>;
  compression?: "gzip" | "none";
  /**
   * The duplicate horizon, the consumer's (plans.json `dedupeHorizonMs`): an event whose
   * occurredAt is older than it by the ingest's clock is refused 400 `too_old`. Default
   * DEFAULT_DEDUPE_HORIZON_MS (24 h); MIN_DEDUPE_HORIZON_MS (1 s) to MAX_DEDUPE_HORIZON_MS (35 d).
   */
  dedupeHorizonMs?: number;
  /** A pino logger, or false for none (tests). Default: pino at info. */
  logger?: Logger | false;
}

/** The limits over their defaults, checked; the first out of range is refused by name. */
export function resolveLimits(partial: Partial<IngestLimits> | undefined): IngestLimits {
  return resolveNamedLimits(LimitsSchema, DEFAULT_INGEST_LIMITS, partial, IngestOptionError);
}

/** The duplicate horizon, checked: the option or its default, refused by name out of range. */
export function resolveDedupeHorizon(horizonMs: number | undefined): number {
  const ms = horizonMs ?? DEFAULT_DEDUPE_HORIZON_MS;
  if (!Number.isSafeInteger(ms) || ms < MIN_DEDUPE_HORIZON_MS || ms > MAX_DEDUPE_HORIZON_MS) {
    throw new IngestOptionError(
      "dedupeHorizonMs",
      `milliseconds from ${MIN_DEDUPE_HORIZON_MS} to ${MAX_DEDUPE_HORIZON_MS} (got ${horizonMs})`,
    );
  }
  return ms;
}

/**
 * The tokens, checked (checkNamedTokens): at least one, names unique and well-formed, secrets
 * long enough and distinct.
 */
export function checkTokens(tokens: ServiceToken[], limits: IngestLimits): void {
  if (!Array.isArray(tokens) || tokens.length === 0) {
    throw new IngestOptionError(
      "tokens",
      "at least one service token (CF_INGEST_TOKENS=name:secret)",
    );
  }
  const fielded = tokens.map((token, i) => ({ token, field: `tokens.${i}` }));
  checkNamedTokens(fielded, limits, IngestOptionError);
}

/** parseTokens("billing:s3cret,agent:other"): the CF_INGEST_TOKENS format. */
export function parseTokens(raw: string | undefined): ServiceToken[] {
  return parseNamedTokens(raw, "tokens", IngestOptionError);
}
