// Recurrence boundaries in UTC: fixed periods (5 hours, 7 days) and calendar months clamped to the
// month's last day (an anchor on the 31st resets Jan 31 -> Feb 28/29 -> Mar 31).

import { WINDOW_5H_MS, WINDOW_7D_MS } from "./limits.ts";
import type { Recurrence, RecurrencePeriod } from "./types.ts";

const DAY = 86_400_000;

/** Days since 1970-01-01 of a civil date (proleptic Gregorian; H. Hinnant's days_from_civil). */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

function isLeapYear(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return isLeapYear(year) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * The anchor plus n calendar months, at the anchor's time of day, clamped to the month's end.
 * Integer arithmetic only (runs on every apply; no Date objects).
 */
export function addMonthsClamped(anchorMs: number, months: number): number {
  const days = Math.floor(anchorMs / DAY);
  const timeOfDayMs = anchorMs - days * DAY;
  // civil_from_days (H. Hinnant), inlined.
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const total = year * 12 + (month - 1) + months;
  const newYear = Math.floor(total / 12);
  const newMonth = total - newYear * 12 + 1;
  const newDay = Math.min(day, daysInMonth(newYear, newMonth));
  return daysFromCivil(newYear, newMonth, newDay) * DAY + timeOfDayMs;
}

export function periodMs(period: "5h" | "7d"): number {
  return period === "5h" ? WINDOW_5H_MS : WINDOW_7D_MS;
}

/** Boundary n (n >= 0; boundary 0 is the anchor). */
export function boundaryAt(period: RecurrencePeriod, anchorMs: number, n: number): number {
  return period === "1mo" ? addMonthsClamped(anchorMs, n) : anchorMs + n * periodMs(period);
}

export function nextBoundary(rec: Recurrence): number {
  return boundaryAt(rec.period, rec.anchorMs, rec.nextIndex);
}

/**
 * A lower bound of nextBoundary(rec) without the calendar: n months after the anchor are at least
 * 28n - 3 days later (every month has 28 days or more; clamping to the month's end takes at most 3).
 */
export function earliestBoundaryMs(rec: Recurrence): number {
  return rec.period === "1mo"
    ? rec.anchorMs + (28 * rec.nextIndex - 3) * DAY
    : rec.anchorMs + rec.nextIndex * periodMs(rec.period);
}

/** Smallest n with boundary(n) > atMs and n a multiple of `step` (step 12: yearly from a monthly anchor). */
export function firstBoundaryIndexAfter(
  period: RecurrencePeriod,
  anchorMs: number,
  atMs: number,
  step = 1,
): number {
  if (atMs < anchorMs) return step;
  if (period !== "1mo") {
    const n = Math.floor((atMs - anchorMs) / periodMs(period)) + 1;
    return Math.ceil(n / step) * step;
  }
  const a = new Date(anchorMs);
  const t = new Date(atMs);
  // boundary(monthsApart - 1) falls in the month before atMs's month: a safe start for the walk.
  const monthsApart =
    (t.getUTCFullYear() - a.getUTCFullYear()) * 12 + (t.getUTCMonth() - a.getUTCMonth());
  let n = Math.max(0, monthsApart - 1);
  while (addMonthsClamped(anchorMs, n) <= atMs) n++;
  n = Math.ceil(n / step) * step;
  return n;
}
