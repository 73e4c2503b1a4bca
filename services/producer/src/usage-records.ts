// From a feature service's usage input to the Avro record the producer sends: the contracts'
// validation, then the duplicate horizon by the producer's clock (an event older than it is
// refused `too_old`, never sent). Pure: the clock and the options are passed in.
import {
  type FieldError,
  tooOldError,
  type UsageEventRecord,
  type UsageInput,
  usageRecordFromEvent,
  validateUsage,
} from "@creditflow/contracts";
import type { RateCard } from "@creditflow/engine";
import { ProducerError } from "./errors.ts";

/** What the check of one usage input needs from the producer's options. */
export interface UsageRules {
  rateCard: RateCard;
  /** The service recorded when the input names none. */
  service: string;
  dedupeHorizonMs: number;
}

export type CheckedUsage =
  | { ok: true; record: UsageEventRecord }
  | { ok: false; errors: FieldError[] };

/**
 * usageRecordOf(input, rules, nowMs, prefix): the record to send, or every field error; an
 * otherwise valid event older than the horizon has the one error `too_old` on its occurredAt.
 * `prefix` names where the event sits in a batch (`events.3`).
 */
export function usageRecordOf(
  input: UsageInput,
  rules: UsageRules,
  nowMs: number,
  prefix = "",
): CheckedUsage {
  const checked = validateUsage(input, rules.rateCard, prefix);
  if (!checked.ok) return checked;
  const field = prefix === "" ? "occurredAt" : `${prefix}.occurredAt`;
  const tooOld = tooOldError(checked.value.eventAtMs, nowMs, rules.dedupeHorizonMs, field);
  if (tooOld !== null) return { ok: false, errors: [tooOld] };
  return { ok: true, record: usageRecordFromEvent(checked.value, input.service ?? rules.service) };
}

/**
 * usageRecordsOf(inputs, rules, nowMs): every record of a batch, or throws one ProducerError
 * with the errors of every event (`events.N.field`): a batch is sent whole or not at all.
 */
export function usageRecordsOf(
  inputs: UsageInput[],
  rules: UsageRules,
  nowMs: number,
): UsageEventRecord[] {
  const records: UsageEventRecord[] = [];
  let errors: FieldError[] = [];
  for (const [i, input] of inputs.entries()) {
    const checked = usageRecordOf(input, rules, nowMs, `events.${i}`);
    if (!checked.ok) errors = errors.concat(checked.errors);
    else if (errors.length === 0) records.push(checked.record);
  }
  if (errors.length > 0) throw usageInputError(errors);
  return records;
}

/** The error of refused input: its code is the first error's (`too_old` or `invalid_input`). */
export function usageInputError(errors: FieldError[]): ProducerError {
  const first = errors[0]!;
  return new ProducerError(first.code === "too_old" ? "too_old" : "invalid_input", first.message, {
    fields: errors,
  });
}
