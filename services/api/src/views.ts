// The engine's answers in the API's edge form: times as ISO-8601, amounts as integer micro-credits
// plus an exact decimal string of credits for display. No rule of credits is decided here.
import {
  type Admission,
  type BalanceView,
  type EngineConfig,
  MICROS_PER_CREDIT,
  type WindowView,
} from "@creditflow/engine";

export const iso = (ms: number): string => new Date(ms).toISOString();
export const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

/** 12_500_000 -> "12.5", -250 -> "-0.00025": exact, from integers only. */
export function formatCredits(micros: number): string {
  const sign = micros < 0 ? "-" : "";
  const abs = Math.abs(micros);
  const whole = Math.floor(abs / MICROS_PER_CREDIT);
  const frac = String(abs % MICROS_PER_CREDIT)
    .padStart(6, "0")
    .replace(/0+$/, "");
  return frac === "" ? `${sign}${whole}` : `${sign}${whole}.${frac}`;
}

function windowOut(w: WindowView | null) {
  if (w === null) return null;
  const percentUsed =
    w.capMicros <= 0 ? 100 : Math.min(100, Math.floor((w.usedMicros * 100) / w.capMicros));
  return {
    capMicros: w.capMicros,
    usedMicros: w.usedMicros,
    percentUsed,
    resetsAt: isoOrNull(w.resetAtMs),
  };
}

const PAUSE_MESSAGES = {
  out_of_credits: "Out of credits: new tasks are paused until the next refresh, or upgrade now.",
  window_cap: "Usage cap of this window reached: new tasks are paused until it resets.",
  feature_not_in_tier: "This feature is not part of the member's tier; an upgrade unlocks it.",
} as const;

export function pauseOut(admission: Admission, config: EngineConfig) {
  if (admission.allowed) return null;
  const upgrade =
    admission.upgradeTierId === null
      ? null
      : {
          tierId: admission.upgradeTierId,
          tierName: config.tiersById.get(admission.upgradeTierId)?.name ?? admission.upgradeTierId,
        };
  return {
    reason: admission.reason,
    message: PAUSE_MESSAGES[admission.reason],
    retryAt: isoOrNull(admission.retryAtMs),
    nextRefreshAt: isoOrNull(admission.nextRefreshAtMs),
    windowResetAt: isoOrNull(admission.windowResetAtMs),
    upgrade,
  };
}

export function balanceOut(
  userId: string,
  view: BalanceView,
  paused: Admission,
  freshness: { stateAtMs: number; readAtMs: number; version: number },
  config: EngineConfig,
) {
  return {
    userId,
    tier: {
      id: view.tierId,
      name: config.tiersById.get(view.tierId)?.name ?? view.tierId,
      billing: view.billing,
      pendingTierId: view.pendingTierId,
      cancelAt: isoOrNull(view.cancelAtMs),
    },
    percent: view.percent,
    basisPoints: view.basisPoints,
    remainingMicros: view.remainingMicros,
    remainingCredits: formatCredits(view.remainingMicros),
    capacityMicros: view.capacityMicros,
    capacityCredits: formatCredits(view.capacityMicros),
    remainingByClass: {
      bonusMicros: view.remainingByClass.bonusMicros,
      bonusCredits: formatCredits(view.remainingByClass.bonusMicros),
      subscriptionMicros: view.remainingByClass.subscriptionMicros,
      subscriptionCredits: formatCredits(view.remainingByClass.subscriptionMicros),
    },
    debtMicros: view.debtMicros,
    bonusGrants: view.bonusGrants.map((g) => ({
      grantId: g.grantId,
      source: g.source,
      amountMicros: g.amountMicros,
      amountCredits: formatCredits(g.amountMicros),
      remainingMicros: g.remainingMicros,
      remainingCredits: formatCredits(g.remainingMicros),
      expiresAt: isoOrNull(g.expiresAtMs),
    })),
    nextRefreshAt: isoOrNull(view.nextRefreshAtMs),
    lowCredit: view.lowCredit,
    lowCreditThresholdPercent: view.lowCreditThresholdPercent,
    windows: { fiveHour: windowOut(view.window5h), sevenDay: windowOut(view.window7d) },
    paused: pauseOut(paused, config),
    asOf: {
      stateAt: iso(freshness.stateAtMs),
      readAt: iso(freshness.readAtMs),
      version: freshness.version,
    },
  };
}
