// What members (and admins, services) read: the balance view and the last transactions of one
// member, computed by the engine from the consumer's state in Redis at the API's clock.
import {
  admitTask,
  balanceView,
  type Capability,
  FEATURES,
  type Feature,
  type MemberState,
} from "@creditflow/engine";
import type { Static, TSchema } from "@sinclair/typebox";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { requireAccessTo } from "./auth.ts";
import { type ApiContext, authorize, callerOf, SECURITY } from "./context.ts";
import { ApiError } from "./errors.ts";
import { memberTransactions } from "./history.ts";
import { BalanceSchema, ErrorSchema, REFUSALS, TransactionsSchema, UserParams } from "./schemas.ts";
import { balanceOut, formatCredits, iso, isoOrNull } from "./views.ts";

/** A feature the member's tier has: the paused notice asks whether *a* new task may start. */
function anyFeatureOf(capabilities: readonly Capability[]): Feature {
  return FEATURES.find((f) => capabilities.includes(f)) ?? "chat";
}

function balanceOf(ctx: ApiContext, state: MemberState, version: number) {
  const nowMs = ctx.clock();
  const engineCtx = { config: ctx.config, nowMs };
  const view = balanceView(state, engineCtx);
  const tier = ctx.config.tiersById.get(view.tierId);
  const admission = admitTask(
    state,
    { feature: anyFeatureOf(tier?.capabilities ?? []), taskKind: null },
    engineCtx,
  );
  return balanceOut(
    state.userId,
    view,
    admission,
    { stateAtMs: state.clockMs, readAtMs: nowMs, version },
    ctx.config,
  );
}

async function transactionsOf(ctx: ApiContext, request: FastifyRequest, userId: string) {
  const stored = await ctx.members.load(userId);
  const answer = await memberTransactions(
    ctx.clickhouse,
    userId,
    stored?.state ?? null,
    ctx.limits.historyTimeoutMs,
  );
  if (stored === null && answer.transactions.length === 0) {
    throw new ApiError("member_not_found", "userId", `no credit state for user ${userId}`);
  }
  ctx.metrics.transactionsSource.inc({ source: answer.source });
  if (answer.historyError !== null) {
    request.log.warn(
      { userId, reason: answer.historyError },
      "history failed; answered from Redis",
    );
  }
  return {
    userId,
    source: answer.source,
    transactions: answer.transactions.map((t) => ({
      taskId: t.taskId,
      feature: t.feature,
      at: iso(t.atMs),
      creditsMicros: t.creditsMicros,
      credits: formatCredits(t.creditsMicros),
    })),
    freshness: {
      readAt: iso(ctx.clock()),
      stateAt: stored === null ? null : iso(stored.state.clockMs),
      historyNewestAt: isoOrNull(answer.historyNewestAtMs),
      historyBehind: answer.historyBehind,
      historyError: answer.historyError,
    },
  };
}

const NOT_FOUND = { 404: ErrorSchema };

/**
 * Who may read a member's data: the calling member their own (`/v1/me/…`), or admins, services
 * and that member one named in the path (`/v1/members/:userId/…`, checked by requireAccessTo).
 */
const READERS = {
  self: { kinds: ["member"], tags: ["member"], security: SECURITY.member },
  named: {
    kinds: ["member", "service", "admin"],
    tags: ["member", "admin"],
    params: UserParams,
    security: [...SECURITY.member, ...SECURITY.service, ...SECURITY.admin],
  },
} as const;

/** A read route's options: its OpenAPI schema answering `ok`, and its readers' authorization. */
function readRoute(
  ctx: ApiContext,
  readers: (typeof READERS)[keyof typeof READERS],
  summary: string,
  ok: TSchema,
) {
  return {
    schema: {
      summary,
      tags: [...readers.tags],
      ...("params" in readers ? { params: readers.params } : {}),
      security: [...readers.security] as never,
      response: { 200: ok, ...NOT_FOUND, ...REFUSALS },
    },
    ...authorize(ctx, readers.kinds),
  };
}

export function balanceRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    "/v1/me/balance",
    readRoute(ctx, READERS.self, "The calling member's balance", BalanceSchema),
    async (request) => {
      const stored = await ctx.members.require(callerOf(request).subject);
      return balanceOf(ctx, stored.state, stored.version);
    },
  );

  app.get(
    "/v1/me/transactions",
    readRoute(
      ctx,
      READERS.self,
      "The calling member's last 10 transactions (one per task)",
      TransactionsSchema,
    ),
    async (request) => transactionsOf(ctx, request, callerOf(request).subject),
  );

  app.get<{ Params: Static<typeof UserParams> }>(
    "/v1/members/:userId/balance",
    readRoute(
      ctx,
      READERS.named,
      "A member's balance (admin, service, or that member's own token)",
      BalanceSchema,
    ),
    async (request) => {
      requireAccessTo(callerOf(request), request.params.userId);
      const stored = await ctx.members.require(request.params.userId);
      return balanceOf(ctx, stored.state, stored.version);
    },
  );

  app.get<{ Params: Static<typeof UserParams> }>(
    "/v1/members/:userId/transactions",
    readRoute(
      ctx,
      READERS.named,
      "A member's last 10 transactions (admin, service, or that member's own token)",
      TransactionsSchema,
    ),
    async (request) => {
      requireAccessTo(callerOf(request), request.params.userId);
      return transactionsOf(ctx, request, request.params.userId);
    },
  );
}
