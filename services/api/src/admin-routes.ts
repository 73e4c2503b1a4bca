// Admin endpoints: each turns a validated request into one credit command and PRODUCES it to the
// commands topic (the consumer applies it; the API never writes a balance). Answered 202 once
// Kafka acknowledged. Each carries the caller's `commandId`: a repeat with the same body sends the
// same command again (the engine answers it as a duplicate); another body with it is 409.
import type { CreditCommand } from "@creditflow/engine";
import { ProducerError } from "@creditflow/producer";
import type { Static, TSchema } from "@sinclair/typebox";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { bodyDigest } from "./command-ids.ts";
import { type ApiContext, authorize, callerOf, SECURITY } from "./context.ts";
import { ApiError } from "./errors.ts";
import {
  AcceptedSchema,
  AdjustBodySchema,
  CommandOnlyBodySchema,
  ErrorSchema,
  GrantBonusBodySchema,
  MigrateBodySchema,
  REFUSALS,
  RevokeParams,
  SubscriptionChangeBodySchema,
  SubscriptionStartBodySchema,
  UserParams,
} from "./schemas.ts";
import { iso } from "./views.ts";

type GrantBody = Static<typeof GrantBonusBodySchema>;
type StartBody = Static<typeof SubscriptionStartBodySchema>;
type ChangeBody = Static<typeof SubscriptionChangeBodySchema>;
type CommandOnlyBody = Static<typeof CommandOnlyBodySchema>;
type AdjustBody = Static<typeof AdjustBodySchema>;
type MigrateBody = Static<typeof MigrateBodySchema>;

interface CommandRoute<B extends { commandId: string; issuedAt?: string }> {
  url: string;
  summary: string;
  params: TSchema;
  body: TSchema;
  /** The command for this body at `atMs`; throws ApiError(invalid_request) naming the field. */
  build(body: B, params: Record<string, string>, atMs: number): CreditCommand;
  campaign?: (body: B) => string | null;
}

const bad = (field: string, message: string) => new ApiError("invalid_request", field, message);

function timeOf(value: string, field: string): number {
  const ms = Date.parse(value);
  if (!Number.isSafeInteger(ms) || ms < 0) throw bad(field, `${field} is not a valid time`);
  return ms;
}

export function adminRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const tierMustExist = (tierId: string) => {
    if (!ctx.config.tiersById.has(tierId)) {
      const known = [...ctx.config.tiersById.keys()].join(", ");
      throw bad("tierId", `unknown tier ${tierId}; the plans have ${known}`);
    }
  };

  function register<B extends { commandId: string; issuedAt?: string }>(
    route: CommandRoute<B>,
  ): void {
    app.post(
      route.url,
      {
        schema: {
          summary: route.summary,
          tags: ["admin"],
          security: SECURITY.admin as never,
          params: route.params,
          body: route.body,
          response: { 202: AcceptedSchema, 409: ErrorSchema, ...REFUSALS },
        },
        ...authorize(ctx, ["admin"]),
      },
      async (request: FastifyRequest, reply) => {
        const body = request.body as B;
        const params = request.params as Record<string, string>;
        const userId = params.userId!;
        // Validate fully (with a provisional time) before the id is claimed: a bad body claims nothing.
        const provisionalMs =
          body.issuedAt === undefined ? ctx.clock() : timeOf(body.issuedAt, "issuedAt");
        route.build(body, params, provisionalMs);
        const claimed = await ctx.commandIds.claim(
          userId,
          body.commandId,
          bodyDigest(request.routeOptions.url ?? route.url, userId, { params, body }),
          provisionalMs,
        );
        const command = route.build(body, params, claimed.atMs);
        try {
          const ack = await ctx.producer.sendCommand(
            command,
            callerOf(request).subject,
            route.campaign?.(body) ?? null,
          );
          ctx.metrics.commands.inc({ type: command.type, repeat: String(claimed.repeat) });
          return reply.code(202).send({
            commandId: command.id,
            type: command.type,
            userId,
            topic: ack.topic,
            issuedAt: iso(claimed.atMs),
            repeat: claimed.repeat,
          });
        } catch (error) {
          if (error instanceof ProducerError && error.code === "invalid_input") {
            const first = error.fields[0];
            throw bad(first?.field ?? "", first?.message ?? error.message);
          }
          if (error instanceof ProducerError && error.retryable) {
            throw new ApiError(
              "kafka_unavailable",
              "",
              "Kafka did not acknowledge; retry with the same commandId",
              { cause: error, headers: { "retry-after": "1" } },
            );
          }
          throw error;
        }
      },
    );
  }

  register<GrantBody>({
    url: "/v1/admin/members/:userId/bonus-grants",
    summary: "Grant bonus credits (trial, promotion, purchase) that expire",
    params: UserParams,
    body: GrantBonusBodySchema,
    build(b, p, atMs) {
      const effectiveFromMs =
        b.effectiveFrom === undefined ? atMs : timeOf(b.effectiveFrom, "effectiveFrom");
      const expiresAtMs = timeOf(b.expiresAt, "expiresAt");
      if (expiresAtMs <= effectiveFromMs) {
        throw bad("expiresAt", "expiresAt must be after effectiveFrom (default: issuedAt)");
      }
      return {
        type: "grant_bonus",
        id: b.commandId,
        userId: p.userId!,
        atMs,
        source: b.source ?? "promotion",
        amountMicros: b.amountMicros,
        effectiveFromMs,
        expiresAtMs,
        priority: b.priority ?? 0,
        recurrence: b.recurrence ?? null,
      };
    },
    campaign: (b) => b.campaign ?? null,
  });

  register<StartBody>({
    url: "/v1/admin/members/:userId/subscription",
    summary: "Start a paid subscription (the cycle is anchored now)",
    params: UserParams,
    body: SubscriptionStartBodySchema,
    build(b, p, atMs) {
      tierMustExist(b.tierId);
      if (b.tierId === ctx.config.plans.freeTierId) {
        throw bad("tierId", `${b.tierId} is the free tier; a subscription needs a paid tier`);
      }
      return {
        type: "subscription_start",
        id: b.commandId,
        userId: p.userId!,
        atMs,
        tierId: b.tierId,
        billing: b.billing,
      };
    },
  });

  register<ChangeBody>({
    url: "/v1/admin/members/:userId/subscription/change",
    summary: "Change the paid tier (upgrade now, downgrade at the next reset)",
    params: UserParams,
    body: SubscriptionChangeBodySchema,
    build(b, p, atMs) {
      tierMustExist(b.tierId);
      return {
        type: "subscription_change",
        id: b.commandId,
        userId: p.userId!,
        atMs,
        tierId: b.tierId,
      };
    },
  });

  register<CommandOnlyBody>({
    url: "/v1/admin/members/:userId/subscription/cancel",
    summary: "Cancel: credits last to the end of the paid cycle, then the free tier",
    params: UserParams,
    body: CommandOnlyBodySchema,
    build: (b, p, atMs) => ({
      type: "subscription_cancel",
      id: b.commandId,
      userId: p.userId!,
      atMs,
    }),
  });

  register<CommandOnlyBody>({
    url: "/v1/admin/members/:userId/grants/:grantId/revoke",
    summary: "Revoke a bonus or migration grant and its remainder",
    params: RevokeParams,
    body: CommandOnlyBodySchema,
    build: (b, p, atMs) => ({
      type: "revoke_grant",
      id: b.commandId,
      userId: p.userId!,
      atMs,
      grantId: p.grantId!,
    }),
  });

  register<AdjustBody>({
    url: "/v1/admin/members/:userId/adjustments",
    summary: "Support adjustment: positive adds an expiring grant, negative debits",
    params: UserParams,
    body: AdjustBodySchema,
    build(b, p, atMs) {
      let expiresAtMs: number | null = null;
      if (b.amountMicros > 0) {
        if (b.expiresAt === undefined || b.expiresAt === null) {
          throw bad("expiresAt", "a positive adjustment needs expiresAt");
        }
        expiresAtMs = timeOf(b.expiresAt, "expiresAt");
        if (expiresAtMs <= atMs) throw bad("expiresAt", "expiresAt must be after issuedAt");
      }
      return {
        type: "adjust",
        id: b.commandId,
        userId: p.userId!,
        atMs,
        amountMicros: b.amountMicros,
        expiresAtMs,
        reason: b.reason,
      };
    },
  });

  register<MigrateBody>({
    url: "/v1/admin/members/:userId/legacy-migration",
    summary: "Convert unused legacy per-feature uses into credits (once per member)",
    params: UserParams,
    body: MigrateBodySchema,
    build(b, p, atMs) {
      const table = ctx.config.plans.legacyConversionMicrosPerUse;
      const names = Object.keys(b.unusedUses);
      if (names.length === 0) throw bad("unusedUses", "at least one legacy quota");
      for (const name of names) {
        if (!Object.hasOwn(table, name)) {
          throw bad(
            `unusedUses.${name}`,
            `unknown legacy quota ${name}; known: ${Object.keys(table).join(", ")}`,
          );
        }
      }
      return {
        type: "migrate_legacy",
        id: b.commandId,
        userId: p.userId!,
        atMs,
        unusedUses: { ...b.unusedUses },
      };
    },
  });
}
