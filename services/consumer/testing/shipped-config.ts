// The engine config from the shipped files (deploy/config), for tests and the bench: unit tests
// take it from here without loading the Kafka and Redis clients the harness brings along.

import { readFileSync } from "node:fs";
import {
  type EngineConfig,
  makeConfig,
  type Plans,
  parsePlans,
  parseRateCard,
} from "@creditflow/engine";

const configDir = new URL("../../../deploy/config/", import.meta.url);

export function loadConfig(plansPatch: Partial<Plans> = {}): EngineConfig {
  const rateCard = parseRateCard(
    JSON.parse(readFileSync(new URL("rate-card.json", configDir), "utf8")),
    "rate-card.json",
  );
  const plans = parsePlans(
    { ...JSON.parse(readFileSync(new URL("plans.json", configDir), "utf8")), ...plansPatch },
    "plans.json",
  );
  return makeConfig(rateCard, plans);
}
