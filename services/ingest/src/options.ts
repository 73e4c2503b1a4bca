// The ingest's options and named limits, validated once at start-up (TypeBox): a bad value
// stops the service before it listens, with the field named.
import { createHash } from "node:crypto";
import type { TopicNames } from "@creditflow/contracts";
import {
  DEFAULT_DEDUPE_HORIZON_MS,
  MAX_DEDUPE_HORIZON_MS,
  MIN_DEDUPE_HORIZON_MS,
  type RateCard,
} from "@creditflow/engine";
import type { ProducerLimits } from "@creditflow/producer";
import { type Static, Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
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
export interface ServiceToken {
  name: string;
  secret: string;
}

/** Names are recorded as the events' service: the producer's rule, 1 to 64 of a safe alphabet. */
const TOKEN_NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** Secrets shorter than this are guessable; longer than the max is a configuration mistake. */
export const MIN_SECRET_LENGTH = 16;
export const MAX_SECRET_LENGTH = 512;

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

export function resolveLimits(partial: Partial<IngestLimits> | undefined): IngestLimits {
  const limits = { ...DEFAULT_INGEST_LIMITS, ...partial };
  const first = Value.Errors(LimitsSchema, limits).First();
  if (first) {
    const field = `limits.${first.path.replace(/^\//, "").replaceAll("/", ".")}`;
    throw new IngestOptionError(field, `${first.message} (got ${JSON.stringify(first.value)})`);
  }
  return limits;
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

/** The tokens, checked: names unique and well-formed, secrets long enough and distinct. */
export function checkTokens(tokens: ServiceToken[], limits: IngestLimits): void {
  if (!Array.isArray(tokens) || tokens.length === 0) {
    throw new IngestOptionError(
      "tokens",
      "at least one service token (CF_INGEST_TOKENS=name:secret)",
    );
  }
  if (tokens.length > limits.maxTokens) {
    throw new IngestOptionError("tokens", `at most ${limits.maxTokens} tokens`);
  }
  const names = new Set<string>();
  const secrets = new Set<string>();
  tokens.forEach((t, i) => {
    if (typeof t.name !== "string" || !TOKEN_NAME.test(t.name)) {
      throw new IngestOptionError(`tokens.${i}.name`, "1 to 64 characters of [A-Za-z0-9._-]");
    }
    if (
      typeof t.secret !== "string" ||
      t.secret.length < MIN_SECRET_LENGTH ||
      t.secret.length > MAX_SECRET_LENGTH
    ) {
      throw new IngestOptionError(
        `tokens.${i}.secret`,
        `${MIN_SECRET_LENGTH} to ${MAX_SECRET_LENGTH} characters`,
      );
    }
    if (names.has(t.name)) throw new IngestOptionError(`tokens.${i}.name`, "names must be unique");
    const digest = createHash("sha256").update(t.secret).digest("hex");
    if (secrets.has(digest)) {
      throw new IngestOptionError(`tokens.${i}.secret`, "secrets must be distinct");
    }
    names.add(t.name);
    secrets.add(digest);
  });
}

/** parseTokens("billing:s3cret,agent:other"): the CF_INGEST_TOKENS format. */
export function parseTokens(raw: string | undefined): ServiceToken[] {
  if (raw === undefined || raw.trim() === "") return [];
  return raw.split(",").map((pair, i) => {
    const colon = pair.indexOf(":");
    if (colon <= 0) throw new IngestOptionError(`tokens.${i}`, "expected name:secret");
    return { name: pair.slice(0, colon).trim(), secret: pair.slice(colon + 1).trim() };
  });
}
