// How the CLI prints credits and times: credits with up to 6 decimals (amounts stay integers
// inside), times in ISO-8601 UTC.
import { MICROS_PER_CREDIT } from "@creditflow/engine";

export function credits(micros: number): string {
  const sign = micros < 0 ? "-" : "";
  const abs = Math.abs(micros);
  const whole = Math.floor(abs / MICROS_PER_CREDIT);
  const frac = (abs % MICROS_PER_CREDIT).toString().padStart(6, "0").replace(/0+$/, "");
  return `${sign}${whole}${frac === "" ? "" : `.${frac}`}`;
}

export function creditsToMicros(text: string, field: string): number {
  if (!/^\d+(\.\d{1,6})?$/.test(text)) {
    throw new Error(`${field}: "${text}" is not a number of credits (up to 6 decimals)`);
  }
  const [whole, frac = ""] = text.split(".");
  const micros = Number(whole) * MICROS_PER_CREDIT + Number(frac.padEnd(6, "0"));
  if (!Number.isSafeInteger(micros) || micros <= 0)
    throw new Error(`${field}: must be more than 0`);
  return micros;
}

export function isoTime(ms: number | null): string {
  return ms === null ? "-" : new Date(ms).toISOString();
}
