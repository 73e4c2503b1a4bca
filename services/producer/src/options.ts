// Options of the producer library with their named limits, validated once at creation: a bad
// option fails fast naming its field, never at the first send.

import type { TopicNames } from "@creditflow/contracts";
import {
  MAX_DEDUPE_HORIZON_MS,
  MIN_DEDUPE_HORIZON_MS,
  type RateCard,
  RateCardSchema,
} from "@creditflow/engine";
import { type Static, Type } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { ProducerError } from "./errors.ts";

export const LimitsSchema = Type.Object(
  {
    /** Records accepted but not yet acknowledged; recordUsage waits when this many are pending. */
    maxPendingRecords: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 20_000 }),
    /** Records in one Kafka produce request. */
    maxBatchRecords: Type.Integer({ minimum: 1, maximum: 100_000, default: 2_000 }),
    /** How long a record may wait for others to fill its batch. */
    lingerMs: Type.Integer({ minimum: 0, maximum: 10_000, default: 5 }),
    /**
     * Batches handed to Kafka at once. At 1 (the default) one user's records stay in call order
     * even through retries; above 1 a batch retried after a broker error may land after a later
     * one.
     */
    maxInFlightBatches: Type.Integer({ minimum: 1, maximum: 5, default: 1 }),
    /** Time for Kafka to acknowledge one request. */
    requestTimeoutMs: Type.Integer({ minimum: 100, maximum: 300_000, default: 30_000 }),
  },
  { additionalProperties: false },
);
export type ProducerLimits = Static<typeof LimitsSchema>;

export const DEFAULT_LIMITS: ProducerLimits = {
  maxPendingRecords: 20_000,
  maxBatchRecords: 2_000,
  lingerMs: 5,
  maxInFlightBatches: 1,
  requestTimeoutMs: 30_000,
};

export interface ProducerOptions {
  /** host:port of each broker. */
  brokers: string[];
  /** The registry's Confluent-compatible base URL (…/apis/ccompat/v7). */
  schemaRegistryUrl: string;
  /** The sending service's name, recorded on every usage event (1 to 64 characters). */
  service: string;
  /** The rate card: which features and models exist. */
  rateCard: RateCard;
  topics?: TopicNames;
  /** gzip (default) or none. */
  compression?: "gzip" | "none";
  limits?: Partial<ProducerLimits>;
  clientId?: string;
  /**
   * The duplicate horizon (docs/product-rules.md, "One id, one effect"), the same as the consumer's plans:
   * a resend with the same id within it is a duplicate; an event whose occurredAt is older than
   * it by the producer's clock is refused `too_old`. Default DEFAULT_DEDUPE_HORIZON_MS (24 h),
   * MIN_DEDUPE_HORIZON_MS (1 s) to MAX_DEDUPE_HORIZON_MS (35 days).
   */
  dedupeHorizonMs?: number;
}

const checkLimits = TypeCompiler.Compile(LimitsSchema);
const checkRateCard = TypeCompiler.Compile(RateCardSchema);

export function resolveLimits(partial: Partial<ProducerLimits> | undefined): ProducerLimits {
  const limits = { ...DEFAULT_LIMITS, ...partial };
  const first = checkLimits.Errors(limits).First();
  if (first) {
    const field = `limits.${first.path.slice(1)}`;
    throw new ProducerError("invalid_options", `${field}: ${first.message.toLowerCase()}`, {
      fields: [{ field, code: "range", message: first.message }],
    });
  }
  return limits;
}

export function checkOptions(o: ProducerOptions): void {
  const bad = (field: string, message: string) =>
    new ProducerError("invalid_options", `${field}: ${message}`, {
      fields: [{ field, code: "type", message }],
    });
  if (!Array.isArray(o.brokers) || o.brokers.length === 0)
    throw bad("brokers", "at least one host:port");
  if (typeof o.schemaRegistryUrl !== "string" || !/^https?:\/\//.test(o.schemaRegistryUrl)) {
    throw bad("schemaRegistryUrl", "an http(s) URL");
  }
  if (typeof o.service !== "string" || o.service.length < 1 || o.service.length > 64) {
    throw bad("service", "1 to 64 characters");
  }
  if (!checkRateCard.Check(o.rateCard)) throw bad("rateCard", "a parsed rate card (parseRateCard)");
  const horizon = o.dedupeHorizonMs;
  if (
    horizon !== undefined &&
    (!Number.isSafeInteger(horizon) ||
      horizon < MIN_DEDUPE_HORIZON_MS ||
      horizon > MAX_DEDUPE_HORIZON_MS)
  ) {
    const message = `milliseconds from ${MIN_DEDUPE_HORIZON_MS} to ${MAX_DEDUPE_HORIZON_MS} (got ${horizon})`;
    throw new ProducerError("invalid_options", `dedupeHorizonMs: ${message}`, {
      fields: [{ field: "dedupeHorizonMs", code: "range", message }],
    });
  }
}
