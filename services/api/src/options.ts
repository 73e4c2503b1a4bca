// The API's options and named limits, validated once at start-up (TypeBox): a bad value stops the
// service before it listens, with the field named.
import { createHash } from "node:crypto";
import type { TopicNames } from "@creditflow/contracts";
import type { EngineConfig } from "@creditflow/engine";
import type { ProducerLimits } from "@creditflow/producer";
import { type Static, Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import type { Logger } from "pino";
import { ApiOptionError } from "./errors.ts";

export const LimitsSchema = Type.Object(
  {
    /** Requests one member token may make per rate window. */
    memberRequestsPerWindow: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    /** Requests one service credential may make per rate window (admission is hot). */
    serviceRequestsPerWindow: Type.Integer({ minimum: 1, maximum: 10_000_000 }),
    /** Requests one admin credential may make per rate window. */
    adminRequestsPerWindow: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    /** Requests per rate window from one address without a credential (page, docs, health). */
    anonymousRequestsPerWindow: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    /** Length of a rate window. */
    rateWindowMs: Type.Integer({ minimum: 100, maximum: 3_600_000 }),
    /** Callers tracked by the rate limiter at once (its memory). */
    rateLimitCallers: Type.Integer({ minimum: 100, maximum: 10_000_000 }),
    /** Verified member tokens remembered until their exp (about 200 bytes each; 0: none). */
    memberTokenCacheEntries: Type.Integer({ minimum: 0, maximum: 10_000_000 }),
    /** Time ClickHouse gets to answer the history query before the Redis copy answers instead. */
    historyTimeoutMs: Type.Integer({ minimum: 50, maximum: 60_000 }),
    /** How long an admin command id is remembered with its body, to refuse a changed repeat. */
    commandIdTtlSeconds: Type.Integer({ minimum: 60, maximum: 400 * 86_400 }),
    /** Bytes of one request body. */
    maxBodyBytes: Type.Integer({ minimum: 1024, maximum: 1024 * 1024 }),
    /** Credentials configured at once (service plus admin). */
    maxTokens: Type.Integer({ minimum: 1, maximum: 1_000 }),
    /** How often the balance page polls while open. */
    pagePollMs: Type.Integer({ minimum: 500, maximum: 60_000 }),
  },
  { additionalProperties: false },
);
export type ApiLimits = Static<typeof LimitsSchema>;

export const DEFAULT_API_LIMITS: ApiLimits = {
  memberRequestsPerWindow: 120,
  serviceRequestsPerWindow: 100_000,
  adminRequestsPerWindow: 600,
  anonymousRequestsPerWindow: 300,
  rateWindowMs: 60_000,
  rateLimitCallers: 100_000,
  memberTokenCacheEntries: 100_000,
  historyTimeoutMs: 2_000,
  commandIdTtlSeconds: 30 * 86_400,
  maxBodyBytes: 64 * 1024,
  maxTokens: 100,
  pagePollMs: 3_000,
};

/** A service or admin credential: the name is the caller's subject (rate limits, audit trail). */
export interface NamedToken {
  name: string;
  secret: string;
}

const TOKEN_NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** Secrets shorter than this are guessable; longer than the max is a configuration mistake. */
export const MIN_SECRET_LENGTH = 16;
export const MAX_SECRET_LENGTH = 512;
/** HS256 keys shorter than 256 bits are refused (RFC 7518 §3.2). */
export const MIN_JWT_SECRET_BYTES = 32;

export interface ApiOptions {
  /** redis://host:port of a single Redis; or set redisClusterNodes instead. */
  redisUrl?: string;
  /** host:port of some nodes of a Redis Cluster (REDIS_CLUSTER_NODES); set means cluster mode. */
  redisClusterNodes?: string[];
  brokers: string[];
  schemaRegistryUrl: string;
  clickhouseUrl: string;
  /** ClickHouse database of the history (default `creditflow`). */
  clickhouseDatabase?: string;
  topics: TopicNames;
  /** Prefix of the consumer's Redis keys (`cf:`). */
  keyPrefix: string;
  /** Rate card and plans (makeConfig): the same the consumer runs with. */
  config: EngineConfig;
  /** HS256 key of member tokens (at least 32 bytes). */
  jwtSecret: string;
  serviceTokens: NamedToken[];
  adminTokens: NamedToken[];
  limits?: Partial<ApiLimits>;
  producerLimits?: Partial<ProducerLimits>;
  /** The API's clock, epoch ms (default Date.now); tests pin it. */
  clock?: () => number;
  /** A pino logger, or false for none (tests). Default: pino at info. */
  logger?: Logger | false;
}

export function resolveLimits(partial: Partial<ApiLimits> | undefined): ApiLimits {
  const limits = { ...DEFAULT_API_LIMITS, ...partial };
  const first = Value.Errors(LimitsSchema, limits).First();
  if (first) {
    const field = `limits.${first.path.replace(/^\//, "").replaceAll("/", ".")}`;
    throw new ApiOptionError(field, `${first.message} (got ${JSON.stringify(first.value)})`);
  }
  return limits;
}

/** Both token lists, checked together: names unique and well-formed, secrets long and distinct. */
export function checkCredentials(options: ApiOptions, limits: ApiLimits): void {
  if (Buffer.byteLength(options.jwtSecret ?? "", "utf8") < MIN_JWT_SECRET_BYTES) {
    throw new ApiOptionError("jwtSecret", `at least ${MIN_JWT_SECRET_BYTES} bytes (CF_JWT_SECRET)`);
  }
  const all = [
    ...options.serviceTokens.map((t, i) => ({ t, field: `serviceTokens.${i}` })),
    ...options.adminTokens.map((t, i) => ({ t, field: `adminTokens.${i}` })),
  ];
  if (all.length > limits.maxTokens) {
    throw new ApiOptionError("tokens", `at most ${limits.maxTokens} tokens`);
  }
  const names = new Set<string>();
  const secrets = new Set<string>([createHash("sha256").update(options.jwtSecret).digest("hex")]);
  for (const { t, field } of all) {
    if (typeof t.name !== "string" || !TOKEN_NAME.test(t.name)) {
      throw new ApiOptionError(`${field}.name`, "1 to 64 characters of [A-Za-z0-9._-]");
    }
    if (
      typeof t.secret !== "string" ||
      t.secret.length < MIN_SECRET_LENGTH ||
      t.secret.length > MAX_SECRET_LENGTH
    ) {
      throw new ApiOptionError(
        `${field}.secret`,
        `${MIN_SECRET_LENGTH} to ${MAX_SECRET_LENGTH} characters`,
      );
    }
    if (names.has(t.name)) throw new ApiOptionError(`${field}.name`, "names must be unique");
    const digest = createHash("sha256").update(t.secret).digest("hex");
    if (secrets.has(digest))
      throw new ApiOptionError(`${field}.secret`, "secrets must be distinct");
    names.add(t.name);
    secrets.add(digest);
  }
}

/** parseTokens("billing:s3cret,ops:other"): the CF_SERVICE_TOKENS / CF_ADMIN_TOKENS format. */
export function parseTokens(raw: string | undefined, field: string): NamedToken[] {
  if (raw === undefined || raw.trim() === "") return [];
  return raw.split(",").map((pair, i) => {
    const colon = pair.indexOf(":");
    if (colon <= 0) throw new ApiOptionError(`${field}.${i}`, "expected name:secret");
    return { name: pair.slice(0, colon).trim(), secret: pair.slice(colon + 1).trim() };
  });
}
