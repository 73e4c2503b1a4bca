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
import type { Static } from "@sinclair/typebox";
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

export function balanceRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    "/v1/me/balance",
    {
      schema: {
        summary: "The calling member's balance",
        tags: ["member"],
        security: SECURITY.member as never,
        response: { 200: BalanceSchema, ...NOT_FOUND, ...REFUSALS },
      },
      ...authorize(ctx, ["member"]),
    },
    async (request) => {
      const stored = await ctx.members.require(callerOf(request).subject);
      return balanceOf(ctx, stored.state, stored.version);
    },
  );

  app.get(
    "/v1/me/transactions",
    {
      schema: {
        summary: "The calling member's last 10 transactions (one per task)",
        tags: ["member"],
        security: SECURITY.member as never,
        response: { 200: TransactionsSchema, ...NOT_FOUND, ...REFUSALS },
      },
      ...authorize(ctx, ["member"]),
    },
    async (request) => transactionsOf(ctx, request, callerOf(request).subject),
  );

  app.get<{ Params: Static<typeof UserParams> }>(
    "/v1/members/:userId/balance",
    {
      schema: {
        summary: "A member's balance (admin, service, or that member's own token)",
        tags: ["member", "admin"],
        params: UserParams,
        security: [...SECURITY.member, ...SECURITY.service, ...SECURITY.admin] as never,
        response: { 200: BalanceSchema, ...NOT_FOUND, ...REFUSALS },
      },
      ...authorize(ctx, ["member", "service", "admin"]),
    },
    async (request) => {
      requireAccessTo(callerOf(request), request.params.userId);
      const stored = await ctx.members.require(request.params.userId);
      return balanceOf(ctx, stored.state, stored.version);
    },
  );

  app.get<{ Params: Static<typeof UserParams> }>(
    "/v1/members/:userId/transactions",
    {
      schema: {
        summary: "A member's last 10 transactions (admin, service, or that member's own token)",
        tags: ["member", "admin"],
        params: UserParams,
        security: [...SECURITY.member, ...SECURITY.service, ...SECURITY.admin] as never,
        response: { 200: TransactionsSchema, ...NOT_FOUND, ...REFUSALS },
      },
      ...authorize(ctx, ["member", "service", "admin"]),
    },
    async (request) => {
      requireAccessTo(callerOf(request), request.params.userId);
      return transactionsOf(ctx, request, request.params.userId);
    },
  );
}
