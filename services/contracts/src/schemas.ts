// The Avro schemas of schemas/*.avsc, loaded once, with the TypeScript shapes of their
// records. avsc runs with wrapUnions "auto": nullable fields are plain values or null, and
// the command union is wrapped as { "creditflow.v1.<Name>": {...} }.
import { readFileSync } from "node:fs";
import avro from "avsc";

const schemaDir = new URL("../../../schemas/", import.meta.url);

/** avsc options; a fresh object per parse, because avsc records parsed names in it. */
export function avroOptions(): { wrapUnions: "auto" } {
  return { wrapUnions: "auto" };
}

function load(file: string): { raw: string; type: avro.Type } {
  const raw = readFileSync(new URL(file, schemaDir), "utf8");
  return { raw, type: avro.Type.forSchema(JSON.parse(raw), avroOptions()) };
}

export const usageEventSchema = load("usage-event.avsc");
export const creditCommandSchema = load("credit-command.avsc");
export const ledgerEntrySchema = load("ledger-entry.avsc");

/** A usage event as it travels in Avro (schemas/usage-event.avsc). */
export interface UsageEventRecord {
  eventId: string;
  userId: string;
  taskId: string;
  feature: string;
  taskKind: string | null;
  model: string;
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
  occurredAt: number;
  service: string;
}

export type CommandBody =
  | {
      "creditflow.v1.GrantBonus": {
        source: "trial" | "promotion" | "purchase" | "adjustment";
        amountMicros: number;
        effectiveFrom: number;
        expiresAt: number;
        priority: number;
        recurrence: "P5H" | "P7D" | "P1M" | null;
        campaign: string | null;
      };
    }
  | { "creditflow.v1.SubscriptionStart": { tierId: string; billing: "monthly" | "annual" } }
  | { "creditflow.v1.SubscriptionChange": { tierId: string } }
  | { "creditflow.v1.SubscriptionCancel": Record<string, never> }
  | { "creditflow.v1.RevokeGrant": { grantId: string } }
  | { "creditflow.v1.Adjust": { amountMicros: number; expiresAt: number | null; reason: string } }
  | { "creditflow.v1.MigrateLegacy": { unusedUses: Record<string, number> } };

/** A credit command as it travels in Avro (schemas/credit-command.avsc). */
export interface CreditCommandRecord {
  commandId: string;
  userId: string;
  issuedAt: number;
  issuedBy: string;
  command: CommandBody;
}

/** A ledger entry as it travels in Avro (schemas/ledger-entry.avsc). */
export interface LedgerEntryRecord {
  entryId: string;
  kind: "debit" | "grant" | "expire" | "reset" | "overdraft" | "migration" | "adjust" | "revoke";
  userId: string;
  grantId: string | null;
  tierId: string | null;
  grantClass: "bonus" | "subscription" | null;
  amountMicros: number;
  balanceAfterMicros: number;
  detailMicros: number;
  feature: string | null;
  taskId: string | null;
  eventAt: number;
  processedAt: number;
  sourceTopic: string | null;
  sourcePartition: number | null;
  sourceOffset: number | null;
}
