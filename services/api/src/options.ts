// The API's options and named limits, validated once at start-up (TypeBox): a bad value stops the
// service before it listens, with the field named.
import type { TopicNames } from "@creditflow/contracts";
import type { EngineConfig } from "@creditflow/engine";
import {
  checkNamedTokens,
  type NamedToken,
  parseNamedTokens,
  resolveNamedLimits,
} from "@creditflow/http-service";
import type { ProducerLimits } from "@creditflow/producer";
import { type Static, Type } from "@sinclair/typebox";
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

/** HS256 keys shorter than 256 bits are refused (RFC 7518 §3.2). */
export const MIN_JWT_SECRET_BYTES = 32;

/** A service or admin credential: the name is the caller's subject (rate limits, audit trail). */
export type { NamedToken };

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

/** The limits over their defaults, checked; the first out of range is refused by name. */
export function resolveLimits(partial: Partial<ApiLimits> | undefined): ApiLimits {
  return resolveNamedLimits(LimitsSchema, DEFAULT_API_LIMITS, partial, ApiOptionError);
}

/**
 * Both token lists, checked together (checkNamedTokens): names unique and well-formed, secrets
 * long and distinct from each other and from the member-token key.
 */
export function checkCredentials(options: ApiOptions, limits: ApiLimits): void {
  if (Buffer.byteLength(options.jwtSecret ?? "", "utf8") < MIN_JWT_SECRET_BYTES) {
    throw new ApiOptionError("jwtSecret", `at least ${MIN_JWT_SECRET_BYTES} bytes (CF_JWT_SECRET)`);
  }
  const all = [
    ...options.serviceTokens.map((token, i) => ({ token, field: `serviceTokens.${i}` })),
    ...options.adminTokens.map((token, i) => ({ token, field: `adminTokens.${i}` })),
  ];
  const otherSecrets = [options.jwtSecret];
  checkNamedTokens(all, { maxTokens: limits.maxTokens, otherSecrets }, ApiOptionError);
}

/** parseTokens("billing:s3cret,ops:other", "serviceTokens"): CF_SERVICE_TOKENS, CF_ADMIN_TOKENS. */
export function parseTokens(raw: string | undefined, field: string): NamedToken[] {
  return parseNamedTokens(raw, field, ApiOptionError);
}
