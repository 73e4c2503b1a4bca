// @creditflow/loadgen: a seeded, realistic load of usage events and credit commands for
// creditflow (CLI, tests, chaos harness). The package's only public door.
export {
  DEFAULT_LATE_DUPLICATE_DISTANCE,
  defaultRunId,
  EVENT_SHARE,
  MAX_LATE_DUPLICATE_DISTANCE,
  MAX_LATENESS_MS,
  type Member,
  type PlannedSend,
  type PlanOptions,
  planCommands,
  planMembers,
  planUsage,
  type Tier,
} from "./generate.ts";
export { type Random, seededRandom } from "./random.ts";
export {
  type FeatureTally,
  formatReport,
  type LoadgenOptions,
  type LoadgenReport,
  LoadSettingsSchema,
  runLoadgen,
} from "./run.ts";
