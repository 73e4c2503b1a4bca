// From the records on Kafka to the rows of ClickHouse's raw tables (pure; see
// migrations/0001_raw_tables.sql for the columns). Times go as 'YYYY-MM-DD hh:mm:ss.mmm' in
// UTC, which DateTime64(3, 'UTC') reads the same on every server.
import type {
  CreditCommandRecord,
  LedgerEntryRecord,
  UsageEventRecord,
} from "@creditflow/contracts";
import { type Feature, priceUsage, type RateCard } from "@creditflow/engine";

/** Where a record was read: the row keeps it for tracing and the sink commits past it. */
export interface KafkaPosition {
  partition: number;
  offset: number;
}

export function chTime(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace("Z", "");
}

export interface LedgerRow {
  entry_id: string;
  kind: string;
  user_id: string;
  grant_id: string | null;
  grant_class: string | null;
  tier_id: string | null;
  amount_micros: number;
  balance_after_micros: number;
  detail_micros: number;
  feature: string | null;
  task_id: string | null;
  event_at: string;
  processed_at: string;
  source_topic: string | null;
  source_partition: number | null;
  source_offset: number | null;
  ledger_partition: number;
  ledger_offset: number;
}

export function ledgerRow(r: LedgerEntryRecord, at: KafkaPosition): LedgerRow {
  return {
    entry_id: r.entryId,
    kind: r.kind,
    user_id: r.userId,
    grant_id: r.grantId,
    grant_class: r.grantClass,
    tier_id: r.tierId ?? null,
    amount_micros: r.amountMicros,
    balance_after_micros: r.balanceAfterMicros,
    detail_micros: r.detailMicros,
    feature: r.feature,
    task_id: r.taskId,
    event_at: chTime(r.eventAt),
    processed_at: chTime(r.processedAt),
    source_topic: r.sourceTopic,
    source_partition: r.sourcePartition,
    source_offset: r.sourceOffset,
    ledger_partition: at.partition,
    ledger_offset: at.offset,
  };
}

export interface UsageRow {
  event_id: string;
  user_id: string;
  task_id: string;
  feature: string;
  task_kind: string | null;
  model: string;
  input_tokens: number;
  output_tokens: number;
  cached_input_tokens: number;
  cost_micros: number;
  rate_card_version: string;
  occurred_at: string;
  service: string;
  kafka_partition: number;
  kafka_offset: number;
}

/**
 * usageRow: the raw usage row with its list price from the rate card (what the consumer debits
 * for it, overdraft aside); null when the event is not priceable (unknown feature or model):
 * the consumer dead-letters such events, so history does not keep them either.
 */
export function usageRow(
  r: UsageEventRecord,
  at: KafkaPosition,
  rateCard: RateCard,
): UsageRow | null {
  // The feature comes off the wire unchecked: priceUsage answers null for any name not on the
  // rate card, hostile ones included.
  const cost = priceUsage(rateCard, r.feature as Feature, r.model, {
    inputTokens: r.inputTokens,
    outputTokens: r.outputTokens,
    cachedInputTokens: r.cachedInputTokens,
  });
  if (
    cost === null ||
    r.inputTokens < 0 ||
    r.outputTokens < 0 ||
    r.cachedInputTokens < 0 ||
    r.userId === ""
  ) {
    return null;
  }
  return {
    event_id: r.eventId,
    user_id: r.userId,
    task_id: r.taskId,
    feature: r.feature,
    task_kind: r.taskKind,
    model: r.model,
    input_tokens: r.inputTokens,
    output_tokens: r.outputTokens,
    cached_input_tokens: r.cachedInputTokens,
    cost_micros: cost,
    rate_card_version: rateCard.version,
    occurred_at: chTime(r.occurredAt),
    service: r.service,
    kafka_partition: at.partition,
    kafka_offset: at.offset,
  };
}

export interface GrantRow {
  grant_id: string;
  user_id: string;
  source: string;
  campaign: string;
  amount_micros: number;
  effective_from: string;
  expires_at: string;
  issued_by: string;
  issued_at: string;
}

/** grantRow: the grant_commands row of a bonus grant command; null for other commands. */
export function grantRow(r: CreditCommandRecord): GrantRow | null {
  if (!("creditflow.v1.GrantBonus" in r.command)) return null;
  const g = r.command["creditflow.v1.GrantBonus"];
  return {
    grant_id: r.commandId,
    user_id: r.userId,
    source: g.source,
    campaign: g.campaign ?? "",
    amount_micros: g.amountMicros,
    effective_from: chTime(g.effectiveFrom),
    expires_at: chTime(g.expiresAt),
    issued_by: r.issuedBy,
    issued_at: chTime(r.issuedAt),
  };
}

export interface DeadLetterRow {
  source_topic: string;
  source_partition: number;
  source_offset: number;
  reason: string;
  detail: string;
  value_base64: string;
  dead_at: string;
  dlq_partition: number;
  dlq_offset: number;
}

/** deadLetterRow: from a dead-letter record's headers (cf-reason, cf-source-*) and bytes. */
export function deadLetterRow(
  headers: Record<string, string | undefined>,
  value: Buffer | null,
  timestampMs: number,
  at: KafkaPosition,
): DeadLetterRow {
  return {
    source_topic: headers["cf-source-topic"] ?? "",
    source_partition: Number(headers["cf-source-partition"] ?? -1),
    source_offset: Number(headers["cf-source-offset"] ?? -1),
    reason: headers["cf-reason"] ?? "unknown",
    detail: (headers["cf-detail"] ?? "").slice(0, 2000),
    value_base64: (value ?? Buffer.alloc(0)).subarray(0, 65_536).toString("base64"),
    dead_at: chTime(timestampMs),
    dlq_partition: at.partition,
    dlq_offset: at.offset,
  };
}
