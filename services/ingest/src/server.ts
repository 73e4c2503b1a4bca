// HTTP ingest for services that cannot speak Kafka: `POST /v1/usage` takes one usage event or
// `{ "events": [...] }`, authenticates the service token, validates with the producer
// library's rules (all-or-nothing for a batch; an event older than the duplicate horizon is
// refused `too_old`) and answers 202 only once Kafka acknowledged every event. A resend of the
// same events is answered as the first time: the consumer applies each id once. The producer library does the Kafka side; this module is the HTTP edge.
import { type UsageInput, UsageInputSchema } from "@creditflow/contracts";
import { CreditProducer, ProducerError } from "@creditflow/producer";
import swagger from "@fastify/swagger";
import { Type } from "@sinclair/typebox";
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from "fastify";
import { pino } from "pino";
import { TokenVerifier } from "./auth.ts";
import { errorBody, INGEST_ERROR_CODES, type IngestErrorCode } from "./errors.ts";
import { createMetrics, type IngestMetrics } from "./metrics.ts";
import {
  checkTokens,
  type IngestLimits,
  type IngestOptions,
  resolveDedupeHorizon,
  resolveLimits,
} from "./options.ts";

/** The service name given to the producer; each event carries its token's name instead. */
const PRODUCER_SERVICE = "ingest";

export interface Ingest {
  app: FastifyInstance;
  producer: CreditProducer;
  metrics: IngestMetrics;
  limits: IngestLimits;
  /** Events older than this by the ingest's clock are refused `too_old`. */
  dedupeHorizonMs: number;
  /** Stop taking requests, flush what Kafka still owes, disconnect. */
  close(): Promise<void>;
}

declare module "fastify" {
  interface FastifyRequest {
    serviceName: string | null;
  }
}

/** Documented shape of the body (OpenAPI); validation itself is validateUsage's, via the producer. */
const UsageBodySchema = Type.Union([
  UsageInputSchema,
  Type.Object(
    { events: Type.Array(UsageInputSchema, { minItems: 1 }) },
    {
      additionalProperties: false,
    },
  ),
]);

const AcceptedSchema = Type.Object({
  accepted: Type.Array(Type.String(), { description: "event ids Kafka acknowledged, in order" }),
});

const ErrorSchema = Type.Object({
  error: Type.Object({
    code: Type.Unsafe<IngestErrorCode>({
      type: "string",
      enum: Object.keys(INGEST_ERROR_CODES),
      description: "one of the ingest's error codes (README.md)",
    }),
    field: Type.String({ description: "the field at fault: occurredAt, events.3.inputTokens" }),
    message: Type.String(),
  }),
});

/** Fastify's own body errors, translated to our codes. */
function fromFastifyError(error: FastifyError): [IngestErrorCode, string] {
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return ["body_too_large", "the body is larger than the limit"];
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return ["unsupported_media_type", "the body must be application/json"];
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return ["invalid_json", "the body is not valid JSON"];
    default:
      if (error instanceof SyntaxError) return ["invalid_json", "the body is not valid JSON"];
      if (error.statusCode === 413) return ["body_too_large", error.message];
      if (error.statusCode === 415) return ["unsupported_media_type", error.message];
      return ["internal", "internal error"];
  }
}

/** buildIngest(options): the fastify app and its producer, connected and ready (not listening). */
export async function buildIngest(options: IngestOptions): Promise<Ingest> {
  const limits = resolveLimits(options.limits);
  checkTokens(options.tokens, limits);
  const dedupeHorizonMs = resolveDedupeHorizon(options.dedupeHorizonMs);
  const verifier = new TokenVerifier(options.tokens);
  const metrics = createMetrics();
  const logger = options.logger === false ? false : (options.logger ?? pino({ level: "info" }));

  const producer = await CreditProducer.create({
    brokers: options.brokers,
    schemaRegistryUrl: options.schemaRegistryUrl,
    service: PRODUCER_SERVICE,
    rateCard: options.rateCard,
    topics: options.topics,
    compression: options.compression,
    limits: options.producerLimits,
    clientId: "creditflow-ingest",
    dedupeHorizonMs,
  });

  // The router's own refusal (a path that is not valid percent-encoding) in the error body.
  const frameworkErrors = (error: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
    const r = refuse("not_found", "", error.message);
    reply.code(r.status).send(r.body);
  };
  // Fastify's request logs carry method, url and remote address, never the Authorization header.
  const app: FastifyInstance =
    logger === false
      ? Fastify({ logger: false, bodyLimit: limits.maxBodyBytes, frameworkErrors })
      : (Fastify({
          loggerInstance: logger,
          bodyLimit: limits.maxBodyBytes,
          frameworkErrors,
        }) as never);
  app.decorateRequest("serviceName", null);
  // JSON only: fastify also parses text/plain by default; without a parser the answer is 415.
  app.removeContentTypeParser("text/plain");

  const refuse = (code: IngestErrorCode, field: string, message: string) => {
    metrics.refused.inc({ code });
    return { status: INGEST_ERROR_CODES[code].status, body: errorBody(code, field, message) };
  };

  app.addHook("onResponse", async (request, reply) => {
    metrics.requests.inc({
      route: request.routeOptions.url ?? "unknown",
      status: String(reply.statusCode),
    });
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const [code, message] = fromFastifyError(error);
    if (code === "internal") request.log.error({ err: error }, "unexpected error");
    const r = refuse(code, "", message);
    return reply.code(r.status).send(r.body);
  });

  app.setNotFoundHandler((request, reply) => {
    const r = refuse("not_found", "", `no route ${request.method} ${request.url}`);
    return reply.code(r.status).send(r.body);
  });

  await app.register(swagger, {
    openapi: {
      info: { title: "creditflow ingest", version: "1" },
      components: {
        securitySchemes: { serviceToken: { type: "http", scheme: "bearer" } },
      },
      security: [{ serviceToken: [] }],
    },
  });
  // The OpenAPI document, generated from the same schemas the handlers use.
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());

  app.get("/healthz", { schema: { hide: true } }, async () => ({ status: "ok" }));

  app.get("/metrics", { schema: { hide: true } }, async (_request, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  app.post(
    "/v1/usage",
    {
      schema: {
        summary: "Record usage events (one, or a batch that is all-or-nothing)",
        body: UsageBodySchema,
        response: { 202: AcceptedSchema, "4xx": ErrorSchema, "5xx": ErrorSchema },
      },
      // Validation is validateUsage's (via the producer), so errors name fields the same way.
      validatorCompiler: () => (data: unknown) => ({ value: data }),
      // Authenticate before the body is read: an unknown caller costs no parsing.
      onRequest: async (request, reply) => {
        const name = verifier.verify(request.headers.authorization);
        if (name === null) {
          const r = refuse("unauthorized", "authorization", "a valid service token is required");
          return reply.code(r.status).header("www-authenticate", "Bearer").send(r.body);
        }
        request.serviceName = name;
      },
    },
    async (request, reply) => {
      const service = request.serviceName!;
      const body = request.body as unknown;
      const isBatch =
        typeof body === "object" && body !== null && !Array.isArray(body) && "events" in body;
      let inputs: unknown[];
      if (isBatch) {
        const { events, ...rest } = body as { events: unknown };
        const extra = Object.keys(rest)[0];
        if (extra !== undefined) {
          const r = refuse("invalid_input", extra, `${extra} is not a known field`);
          return reply.code(r.status).send(r.body);
        }
        if (!Array.isArray(events) || events.length === 0) {
          const r = refuse("invalid_input", "events", "events must be a non-empty array");
          return reply.code(r.status).send(r.body);
        }
        if (events.length > limits.maxBatchEvents) {
          const r = refuse(
            "batch_too_large",
            "events",
            `${events.length} events; at most ${limits.maxBatchEvents} in one batch`,
          );
          return reply.code(r.status).send(r.body);
        }
        inputs = events;
      } else {
        inputs = [body];
      }
      // The token names the service unless the event does.
      const stamped = inputs.map((e) =>
        typeof e === "object" &&
        e !== null &&
        !Array.isArray(e) &&
        (e as UsageInput).service === undefined
          ? { ...e, service }
          : e,
      ) as UsageInput[];
      const startedAt = performance.now();
      try {
        const acks = isBatch
          ? await producer.recordUsageBatch(stamped)
          : [await producer.recordUsage(stamped[0]!)];
        metrics.ackSeconds.observe((performance.now() - startedAt) / 1000);
        metrics.eventsAccepted.inc({ service }, acks.length);
        return reply.code(202).send({ accepted: acks.map((a) => a.id) });
      } catch (error) {
        if (
          error instanceof ProducerError &&
          (error.code === "invalid_input" || error.code === "too_old")
        ) {
          const first = error.fields[0];
          const r = refuse(error.code, first?.field ?? "", first?.message ?? error.message);
          return reply.code(r.status).send(r.body);
        }
        if (error instanceof ProducerError && error.retryable) {
          request.log.warn({ err: error }, "Kafka did not acknowledge");
          const r = refuse(
            "kafka_unavailable",
            "",
            "Kafka did not acknowledge; retry with the same ids",
          );
          return reply.code(r.status).header("retry-after", "1").send(r.body);
        }
        throw error;
      }
    },
  );

  await app.ready();
  return {
    app,
    producer,
    metrics,
    limits,
    dedupeHorizonMs,
    async close() {
      await app.close();
      await producer.close();
    },
  };
}
