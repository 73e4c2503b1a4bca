// What every route module is given: configuration, clock, stores, credentials and metrics of one
// API instance, plus the per-request caller set by the auth hook.
import type { ClickHouseClient } from "@clickhouse/client";
import type { EngineConfig } from "@creditflow/engine";
import type { CreditProducer } from "@creditflow/producer";
import type {
  FastifyReply,
  FastifyRequest,
  HookHandlerDoneFunction,
  RequestPayload,
} from "fastify";
import { type Authenticator, type Caller, type CallerKind, requireKind } from "./auth.ts";
import type { CommandIds } from "./command-ids.ts";
import { ApiError } from "./errors.ts";
import type { MemberReader } from "./members.ts";
import type { ApiMetrics } from "./metrics.ts";
import type { ApiLimits } from "./options.ts";

declare module "fastify" {
  interface FastifyRequest {
    caller: Caller | null;
    /** Why the credential was refused; thrown once the rate limiter has counted the request. */
    authError: ApiError | null;
  }
}

export interface ApiContext {
  config: EngineConfig;
  limits: ApiLimits;
  clock: () => number;
  members: MemberReader;
  commandIds: CommandIds;
  producer: CreditProducer;
  clickhouse: ClickHouseClient;
  auth: Authenticator;
  metrics: ApiMetrics;
}

/**
 * Route hooks: `onRequest` identifies the caller without refusing yet, so the rate limiter (which
 * runs after it) keys a known caller by its subject and a failed credential by its address; then
 * `preParsing` refuses (401, then 403 for the wrong kind) before any body is read. Both are
 * callback hooks: identification is synchronous, and an async hook costs promise hops per request.
 */
export function authorize(ctx: ApiContext, kinds: readonly CallerKind[]) {
  return {
    onRequest: (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
      try {
        request.caller = ctx.auth.identify(request.headers.authorization);
      } catch (error) {
        if (!(error instanceof ApiError)) {
          done(error as Error);
          return;
        }
        request.authError = error;
      }
      done();
    },
    preParsing: (
      request: FastifyRequest,
      _reply: FastifyReply,
      payload: RequestPayload,
      done: (error: Error | null, payload?: RequestPayload) => void,
    ) => {
      try {
        if (request.authError !== null) throw request.authError;
        requireKind(callerOf(request), kinds);
      } catch (error) {
        done(error as Error);
        return;
      }
      done(null, payload);
    },
  };
}

/** The caller set by `authorize` (a route without it has a bug). */
export function callerOf(request: FastifyRequest): Caller {
  if (request.caller === null) throw new Error("assertion: route is behind authorize()");
  return request.caller;
}

/** Security requirements for the OpenAPI document. */
export const SECURITY = {
  member: [{ memberToken: [] }],
  service: [{ serviceToken: [] }],
  admin: [{ adminToken: [] }],
} as const;
