// Between the Avro records on the wire and the engine's inputs and ledger entries. Pure
// field mapping: validation of values is the job of validate.ts and the engine.
import type {
  AgentTaskKind,
  CreditCommand,
  Feature,
  LedgerEntry,
  RecurrencePeriod,
  UsageEvent,
} from "@creditflow/engine";
import type {
  CommandBody,
  CreditCommandRecord,
  LedgerEntryRecord,
  UsageEventRecord,
} from "./schemas.ts";

const periodToAvro = { "5h": "P5H", "7d": "P7D", "1mo": "P1M" } as const;
const periodFromAvro = { P5H: "5h", P7D: "7d", P1M: "1mo" } as const satisfies Record<
  string,
  RecurrencePeriod
>;

export function usageEventFromRecord(r: UsageEventRecord): UsageEvent {
  return {
    type: "usage",
    id: r.eventId,
    userId: r.userId,
    taskId: r.taskId,
    feature: r.feature as Feature,
    taskKind: (r.taskKind ?? null) as AgentTaskKind | null,
    model: r.model,
    inputTokens: r.inputTokens,
    outputTokens: r.outputTokens,
    cachedInputTokens: r.cachedInputTokens,
    eventAtMs: r.occurredAt,
  };
}

export function usageRecordFromEvent(e: UsageEvent, service: string): UsageEventRecord {
  return {
    eventId: e.id,
    userId: e.userId,
    taskId: e.taskId,
    feature: e.feature,
    taskKind: e.taskKind,
    model: e.model,
    inputTokens: e.inputTokens,
    outputTokens: e.outputTokens,
    cachedInputTokens: e.cachedInputTokens,
    occurredAt: e.eventAtMs,
    service,
  };
}

export function commandFromRecord(r: CreditCommandRecord): CreditCommand {
  const base = { id: r.commandId, userId: r.userId, atMs: r.issuedAt };
  const body = r.command;
  if ("creditflow.v1.GrantBonus" in body) {
    const b = body["creditflow.v1.GrantBonus"];
    return {
      ...base,
      type: "grant_bonus",
      source: b.source,
      amountMicros: b.amountMicros,
      effectiveFromMs: b.effectiveFrom,
      expiresAtMs: b.expiresAt,
      priority: b.priority,
      recurrence: b.recurrence === null ? null : periodFromAvro[b.recurrence],
    };
  }
  if ("creditflow.v1.SubscriptionStart" in body) {
    const b = body["creditflow.v1.SubscriptionStart"];
    return { ...base, type: "subscription_start", tierId: b.tierId, billing: b.billing };
  }
  if ("creditflow.v1.SubscriptionChange" in body) {
    return {
      ...base,
      type: "subscription_change",
      tierId: body["creditflow.v1.SubscriptionChange"].tierId,
    };
  }
  if ("creditflow.v1.SubscriptionCancel" in body) return { ...base, type: "subscription_cancel" };
  if ("creditflow.v1.RevokeGrant" in body) {
    return { ...base, type: "revoke_grant", grantId: body["creditflow.v1.RevokeGrant"].grantId };
  }
  if ("creditflow.v1.Adjust" in body) {
    const b = body["creditflow.v1.Adjust"];
    return {
      ...base,
      type: "adjust",
      amountMicros: b.amountMicros,
      expiresAtMs: b.expiresAt,
      reason: b.reason,
    };
  }
  const b = body["creditflow.v1.MigrateLegacy"];
  return { ...base, type: "migrate_legacy", unusedUses: { ...b.unusedUses } };
}

function commandBody(c: CreditCommand, campaign: string | null): CommandBody {
  switch (c.type) {
    case "grant_bonus":
      return {
        "creditflow.v1.GrantBonus": {
          source: c.source,
          amountMicros: c.amountMicros,
          effectiveFrom: c.effectiveFromMs,
          expiresAt: c.expiresAtMs,
          priority: c.priority,
          recurrence: c.recurrence === null ? null : periodToAvro[c.recurrence],
          campaign,
        },
      };
    case "subscription_start":
      return { "creditflow.v1.SubscriptionStart": { tierId: c.tierId, billing: c.billing } };
    case "subscription_change":
      return { "creditflow.v1.SubscriptionChange": { tierId: c.tierId } };
    case "subscription_cancel":
      return { "creditflow.v1.SubscriptionCancel": {} };
    case "revoke_grant":
      return { "creditflow.v1.RevokeGrant": { grantId: c.grantId } };
    case "adjust":
      return {
        "creditflow.v1.Adjust": {
          amountMicros: c.amountMicros,
          expiresAt: c.expiresAtMs,
          reason: c.reason,
        },
      };
    case "migrate_legacy":
      return { "creditflow.v1.MigrateLegacy": { unusedUses: { ...c.unusedUses } } };
  }
}

/** The Avro record of a command; `campaign` is kept for analysts on bonus grants only. */
export function recordFromCommand(
  c: CreditCommand,
  issuedBy: string,
  campaign: string | null = null,
): CreditCommandRecord {
  return {
    commandId: c.id,
    userId: c.userId,
    issuedAt: c.atMs,
    issuedBy,
    command: commandBody(c, c.type === "grant_bonus" ? campaign : null),
  };
}

/** The Avro record of a ledger entry; `tierId` is the member's tier when it was written. */
export function ledgerRecordFromEntry(
  e: LedgerEntry,
  tierId: string | null = null,
): LedgerEntryRecord {
  return {
    entryId: e.id,
    kind: e.kind,
    userId: e.userId,
    grantId: e.grantId,
    tierId,
    grantClass: e.cls,
    amountMicros: e.amountMicros,
    balanceAfterMicros: e.balanceAfterMicros,
    detailMicros: e.detailMicros,
    feature: e.feature,
    taskId: e.taskId,
    eventAt: e.eventAtMs,
    processedAt: e.processedAtMs,
    sourceTopic: e.topic ?? null,
    sourcePartition: e.partition ?? null,
    sourceOffset: e.offset === undefined ? null : Number(e.offset),
  };
}
