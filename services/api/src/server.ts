// buildApi(options): the fastify app of the balance API, admin API and balance page, with its
// Redis, ClickHouse and Kafka clients, connected and ready (not listening). Every refusal is
// `{ error: { code, field, message } }`, including fastify's own validation and parsing errors.
import { type ClickHouseClient, ClickHouseLogLevel, createClient } from "@clickhouse/client";
import { connectRedis, type RedisClient } from "@creditflow/member-store";
import { CreditProducer } from "@creditflow/producer";
import rateLimit from "@fastify/rate-limit";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from "fastify";
import { pino } from "pino";
import { adminRoutes } from "./admin-routes.ts";
import { admissionRoute } from "./admission-route.ts";
import { Authenticator, type CallerKind } from "./auth.ts";
import { balanceRoutes } from "./balance-routes.ts";
import { CommandIds } from "./command-ids.ts";
import type { ApiContext } from "./context.ts";
import { API_ERROR_CODES, ApiError } from "./errors.ts";
import { MemberReader } from "./members.ts";
import { type ApiMetrics, createMetrics } from "./metrics.ts";
import { type ApiLimits, type ApiOptions, checkCredentials, resolveLimits } from "./options.ts";
import { pageRoutes } from "./page.ts";

export interface Api {
  app: FastifyInstance;
  producer: CreditProducer;
  redis: RedisClient;
  clickhouse: ClickHouseClient;
  metrics: ApiMetrics;
  limits: ApiLimits;
  /** Stop taking requests, flush what Kafka still owes, disconnect everything. */
  close(): Promise<void>;
}

interface AjvError {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** The field a validation error is about: `amountMicros`, `unusedUses.ppt`, or the part's name. */
export function fieldOfValidation(e: AjvError, context: string | undefined): string {
  const path = (e.instancePath ?? "").replace(/^\//, "").replaceAll("/", ".");
  const extra =
    typeof e.params?.missingProperty === "string"
      ? e.params.missingProperty
      : typeof e.params?.additionalProperty === "string"
        ? e.params.additionalProperty
        : null;
  const field = [path, extra].filter((p) => p !== null && p !== "").join(".");
  return field === "" ? (context ?? "body") : field;
}

function validationMessage(e: AjvError, field: string): string {
  if (e.keyword === "required") return `${field} is required`;
  if (e.keyword === "additionalProperties") return `${field} is not a known field`;
  if (e.keyword === "not") return `${field} must not be 0`;
  return `${field} ${e.message ?? "is invalid"}`;
}

/** Fastify's own errors, translated to our codes. */
function fromFastifyError(error: FastifyError): ApiError {
  if (error.validation !== undefined && error.validation.length > 0) {
    const first = error.validation[0] as AjvError;
    const field = fieldOfValidation(first, error.validationContext);
    return new ApiError("invalid_request", field, validationMessage(first, field));
  }
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new ApiError("body_too_large", "", "the body is larger than the limit");
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new ApiError("unsupported_media_type", "", "the body must be application/json");
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new ApiError("invalid_json", "body", "the body is empty; JSON expected");
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return new ApiError("invalid_json", "body", "the body is not valid JSON");
    default:
      if (error instanceof SyntaxError) {
        return new ApiError("invalid_json", "body", "the body is not valid JSON");
      }
      if (error.statusCode === 413) return new ApiError("body_too_large", "", error.message);
      if (error.statusCode === 415)
        return new ApiError("unsupported_media_type", "", error.message);
      return new ApiError("internal", "", "internal error", { cause: error });
  }
}

/** Rate-limit key: the credential's subject when authenticated, else the address. */
function rateKey(request: FastifyRequest): string {
  const caller = request.caller;
  return caller === null ? `ip:${request.ip}` : `${caller.kind}:${caller.subject}`;
}

function rateMax(limits: ApiLimits, request: FastifyRequest): number {
  const perKind: Record<CallerKind, number> = {
    member: limits.memberRequestsPerWindow,
    service: limits.serviceRequestsPerWindow,
    admin: limits.adminRequestsPerWindow,
  };
  return request.caller === null ? limits.anonymousRequestsPerWindow : perKind[request.caller.kind];
}

/**
 * Fastify's per-request lines at debug instead of info (a request that failed with an error is
 * still logged at error): at a few thousand requests a second, two info lines per request were a
 * large share of the API's CPU. Their fields are fastify's (method, url, address, status, time),
 * never the Authorization header.
 */
class DebugRequestLogs extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ req: request }, "incoming request");
  }

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
    metadata?: Record<string, unknown>,
  ): void {
    if (error) super.requestCompleted(error, request, reply, metadata);
    else reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, "request completed");
  }
}

export async function buildApi(options: ApiOptions): Promise<Api> {
  const limits = resolveLimits(options.limits);
  checkCredentials(options, limits);
  const metrics = createMetrics();
  const logger = options.logger === false ? false : (options.logger ?? pino({ level: "info" }));
  const clock = options.clock ?? Date.now;

  // Auto-pipelining: reads of concurrent requests share one write to Redis (one event-loop tick).
  const redis = connectRedis(
    { redisUrl: options.redisUrl, redisClusterNodes: options.redisClusterNodes },
    { maxRetriesPerRequest: 2, enableOfflineQueue: true, enableAutoPipelining: true },
  );
  const clickhouse = createClient({
    url: options.clickhouseUrl,
    database: options.clickhouseDatabase ?? "creditflow",
    request_timeout: limits.historyTimeoutMs,
    // The transactions route logs a failed history query itself (once, with the fallback taken).
    log: { level: ClickHouseLogLevel.OFF },
  });
  let producer: CreditProducer;
  try {
    producer = await CreditProducer.create({
      brokers: options.brokers,
      schemaRegistryUrl: options.schemaRegistryUrl,
      service: "api",
      rateCard: options.config.rateCard,
      topics: options.topics,
      limits: { lingerMs: 0, ...options.producerLimits },
      clientId: "creditflow-api",
    });
  } catch (error) {
    redis.disconnect();
    await clickhouse.close();
    throw error;
  }

  const tokenHit = metrics.cacheLookups.labels("member_token", "hit");
  const tokenMiss = metrics.cacheLookups.labels("member_token", "miss");
  const ctx: ApiContext = {
    config: options.config,
    limits,
    clock,
    members: new MemberReader(redis, options.keyPrefix),
    commandIds: new CommandIds(redis, options.keyPrefix, limits.commandIdTtlSeconds),
    producer,
    clickhouse,
    auth: new Authenticator(options, {
      memberTokenCacheEntries: limits.memberTokenCacheEntries,
      onLookup: (hit) => (hit ? tokenHit : tokenMiss).inc(),
    }),
    metrics,
  };

  const fastifyOptions = {
    logController: new DebugRequestLogs(),
    bodyLimit: limits.maxBodyBytes,
    // Refuse unknown fields and wrong types instead of silently dropping or coercing them.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    // Path ids up to their schemas' length (grantId: 256) reach validation, which names them;
    // the router's default (100) answered a valid 101-to-128-character user id with 414.
    routerOptions: { maxParamLength: 512 },
    // The router's own refusals (a longer parameter, bad percent-encoding) in the error body.
    frameworkErrors: (error: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
      const refusal = new ApiError("invalid_request", "path", error.message);
      metrics.refused.inc({ code: refusal.code });
      reply.code(refusal.statusCode).send(refusal.body());
    },
  };
  const app: FastifyInstance =
    logger === false
      ? Fastify({ logger: false, ...fastifyOptions })
      : (Fastify({ loggerInstance: logger, ...fastifyOptions }) as never);
  app.decorateRequest("caller", null);
  app.decorateRequest("authError", null);
  app.removeContentTypeParser("text/plain");

  // A callback hook: an async one costs a promise and its hops on every request.
  app.addHook("onResponse", (request, reply, done) => {
    const route = request.routeOptions.url ?? "unknown";
    metrics.requests.inc({ route, status: String(reply.statusCode) });
    metrics.latency.observe({ route }, reply.elapsedTime / 1000);
    done();
  });

  app.setErrorHandler((raw: FastifyError | ApiError, request, reply) => {
    const error = raw instanceof ApiError ? raw : fromFastifyError(raw);
    if (error.code === "internal") request.log.error({ err: raw }, "unexpected error");
    else if (error.statusCode >= 500) request.log.warn({ err: raw }, error.message);
    metrics.refused.inc({ code: error.code });
    for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
    return reply.code(error.statusCode).send(error.body());
  });

  app.setNotFoundHandler((request, reply) => {
    const error = new ApiError("not_found", "", `no route ${request.method} ${request.url}`);
    metrics.refused.inc({ code: error.code });
    return reply.code(error.statusCode).send(error.body());
  });

  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "creditflow API",
        version: "1.0.0",
        description:
          "Balances, transactions and admission read from the consumer's state; admin commands " +
          "produced to Kafka. Amounts are integer micro-credits (1 credit = 1,000,000), times " +
          "ISO-8601 UTC. Every refusal is `{ error: { code, field, message } }`; codes: " +
          Object.entries(API_ERROR_CODES)
            .map(([code, v]) => `${code} (${v.status})`)
            .join(", "),
      },
      components: {
        securitySchemes: {
          memberToken: {
            type: "http",
            scheme: "bearer",
            bearerFormat: "JWT (HS256, sub = user id)",
          },
          serviceToken: { type: "http", scheme: "bearer", description: "a service credential" },
          adminToken: { type: "http", scheme: "bearer", description: "an admin credential" },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });

  // After each route's own onRequest (identification), so the key is the credential's subject;
  // a refused credential is counted by its address before the 401 is thrown (preParsing).
  await app.register(rateLimit, {
    global: true,
    hook: "onRequest",
    max: (request) => rateMax(limits, request),
    timeWindow: limits.rateWindowMs,
    cache: limits.rateLimitCallers,
    keyGenerator: rateKey,
    errorResponseBuilder: (_request, context) =>
      new ApiError(
        "rate_limited",
        "authorization",
        `more than ${context.max} requests in ${Math.round(limits.rateWindowMs / 1000)} s from this caller; retry in ${context.after}`,
        { headers: { "retry-after": String(Math.ceil(context.ttl / 1000)) } },
      ),
  });

  app.get("/healthz", { schema: { hide: true } }, async () => ({ status: "ok" }));
  app.get("/metrics", { schema: { hide: true } }, async (_request, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  balanceRoutes(app, ctx);
  admissionRoute(app, ctx);
  adminRoutes(app, ctx);
  pageRoutes(app, limits.pagePollMs);

  await app.ready();
  return {
    app,
    producer,
    redis,
    clickhouse,
    metrics,
    limits,
    async close() {
      await app.close();
      await producer.close();
      await clickhouse.close();
      redis.disconnect();
    },
  };
}
