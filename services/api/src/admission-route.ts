// Admission for a feature service before it starts a task: allowed, or paused with the reason,
// when the member can start again and the upgrade that would let them start now (engine's
// admitTask). A user with no state yet is a new free-tier member: the consumer opens them so.
import { type AgentTaskKind, admitTask, openMember } from "@creditflow/engine";
import type { Static } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import { type ApiContext, authorize, SECURITY } from "./context.ts";
import { AdmissionBodySchema, AdmissionSchema, REFUSALS } from "./schemas.ts";
import { pauseOut } from "./views.ts";

export function admissionRoute(app: FastifyInstance, ctx: ApiContext): void {
  app.post<{ Body: Static<typeof AdmissionBodySchema> }>(
    "/v1/admission",
    {
      schema: {
        summary: "May this member start a new task now?",
        description:
          "Answers 200 either way: `allowed: true`, or `allowed: false` with the reason " +
          "(out_of_credits | window_cap | feature_not_in_tier), when to retry and the upgrade.",
        tags: ["service"],
        security: SECURITY.service as never,
        body: AdmissionBodySchema,
        response: { 200: AdmissionSchema, ...REFUSALS },
      },
      ...authorize(ctx, ["service"]),
    },
    async (request) => {
      const { userId, feature } = request.body;
      const taskKind: AgentTaskKind | null =
        feature === "agent" ? (request.body.taskKind ?? null) : null;
      const nowMs = ctx.clock();
      const engineCtx = { config: ctx.config, nowMs };
      const stored = await ctx.members.load(userId);
      const state = stored?.state ?? openMember(userId, nowMs, engineCtx).state;
      const admission = admitTask(state, { feature, taskKind }, engineCtx);
      const pause = pauseOut(admission, ctx.config);
      return pause === null
        ? { userId, allowed: true as const }
        : { userId, allowed: false as const, ...pause };
    },
  );
}
