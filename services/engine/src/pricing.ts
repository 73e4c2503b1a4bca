// Tokens to micro-credits with the rate card: integer math only, the sum rounded up.

import type { RateCard } from "./config.ts";
import type { Feature } from "./types.ts";

/**
 * Cost of one usage event, or null when the feature/model is not on the rate card. Adapters
 * call it with names straight off the wire: own properties only, so "constructor" or
 * "__proto__" read as unknown instead of reaching Object.prototype.
 */
export function priceUsage(
  rateCard: RateCard,
  feature: Feature,
  model: string,
  tokens: { inputTokens: number; outputTokens: number; cachedInputTokens: number },
): number | null {
  if (!Object.hasOwn(rateCard.features, feature)) return null;
  const models = rateCard.features[feature].models;
  if (!Object.hasOwn(models, model)) return null;
  const rates = models[model]!;
  // Each product is below 1e15 (MAX_TOKENS_PER_EVENT * MAX_RATE_MICROS_PER_1K): exact in a double.
  const perThousand =
    tokens.inputTokens * rates.inputPer1kMicros +
    tokens.outputTokens * rates.outputPer1kMicros +
    tokens.cachedInputTokens * rates.cachedInputPer1kMicros;
  const rest = perThousand % 1000;
  return (perThousand - rest) / 1000 + (rest > 0 ? 1 : 0);
}
