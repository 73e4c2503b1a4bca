// Goal: every engine input and ledger entry survives the trip through its Avro record and the
// Avro binary encoding unchanged, so what a producer sends is what the engine applies. Through the
// package's door, as producers and the consumer use it.
import type { CreditCommand, LedgerEntry, UsageEvent } from "@creditflow/engine";
import { describe, expect, it } from "vitest";
import {
  commandFromRecord,
  creditCommandSchema,
  ledgerEntrySchema,
  ledgerRecordFromEntry,
  recordFromCommand,
  usageEventFromRecord,
  usageEventSchema,
  usageRecordFromEvent,
} from "./index.ts";

const at = Date.UTC(2026, 10, 25, 12, 0, 0);
const base = { userId: "u-1", atMs: at };

const commands: CreditCommand[] = [
  {
    ...base,
    id: "c1",
    type: "grant_bonus",
    source: "trial",
    amountMicros: 5_000_000,
    effectiveFromMs: at,
    expiresAtMs: at + 7 * 86_400_000,
    priority: 0,
    recurrence: null,
  },
  {
    ...base,
    id: "c2",
    type: "grant_bonus",
    source: "promotion",
    amountMicros: 1,
    effectiveFromMs: at,
    expiresAtMs: at + 1,
    priority: 3,
    recurrence: "5h",
  },
  { ...base, id: "c3", type: "subscription_start", tierId: "plus", billing: "annual" },
  { ...base, id: "c4", type: "subscription_change", tierId: "pro" },
  { ...base, id: "c5", type: "subscription_cancel" },
  { ...base, id: "c6", type: "revoke_grant", grantId: "g-1" },
  { ...base, id: "c7", type: "adjust", amountMicros: -3, expiresAtMs: null, reason: "refund" },
  { ...base, id: "c8", type: "adjust", amountMicros: 9, expiresAtMs: at + 5, reason: "goodwill" },
  { ...base, id: "c9", type: "migrate_legacy", unusedUses: { agent: 20, ppt: 3 } },
];

describe("Avro mapping", () => {
  it("round-trips a usage event through Avro binary", () => {
    const event: UsageEvent = {
      type: "usage",
      id: "e-1",
      userId: "u-1",
      taskId: "t-1",
      feature: "agent",
      taskKind: "deep_research",
      model: "agent-large",
      inputTokens: 120_000,
      outputTokens: 9_000,
      cachedInputTokens: 40_000,
      eventAtMs: at,
    };
    const bytes = usageEventSchema.type.toBuffer(usageRecordFromEvent(event, "agent-runtime"));
    expect(usageEventFromRecord(usageEventSchema.type.fromBuffer(bytes))).toEqual(event);
  });

  it.each(commands.map((c) => [c.type, c] as const))("round-trips %s", (_type, command) => {
    const bytes = creditCommandSchema.type.toBuffer(recordFromCommand(command, "admin:test"));
    expect(commandFromRecord(creditCommandSchema.type.fromBuffer(bytes))).toEqual(command);
  });

  it("encodes a ledger entry with its Kafka position", () => {
    const entry: LedgerEntry = {
      id: "e-1#0",
      kind: "debit",
      userId: "u-1",
      grantId: "g-1",
      cls: "bonus",
      amountMicros: -1_500,
      balanceAfterMicros: 98_500,
      detailMicros: 0,
      feature: "chat",
      taskId: "t-1",
      eventAtMs: at,
      processedAtMs: at + 10,
      topic: "creditflow.usage.v1",
      partition: 3,
      offset: "42",
    };
    const decoded = ledgerEntrySchema.type.fromBuffer(
      ledgerEntrySchema.type.toBuffer(ledgerRecordFromEntry(entry)),
    );
    expect(decoded).toMatchObject({
      entryId: "e-1#0",
      kind: "debit",
      grantClass: "bonus",
      amountMicros: -1_500,
      sourceTopic: "creditflow.usage.v1",
      sourcePartition: 3,
      sourceOffset: 42,
    });
  });
});
