// Recurrence boundaries in UTC: fixed periods (5 hours, 7 days) and calendar months clamped to the
// month's last day (an anchor on the 31st resets Jan 31 -> Feb 28/29 -> Mar 31).

import { WINDOW_5H_MS, WINDOW_7D_MS } from "./limits.ts";
import type { Recurrence, RecurrencePeriod } from "./types.ts";

/** The anchor plus n calendar months, at the anchor's time of day, clamped to the month's end. */
export function addMonthsClamped(anchorMs: number, months: number): number {
  const a = new Date(anchorMs);
  const year = a.getUTCFullYear();
  const month = a.getUTCMonth() + months;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const day = Math.min(a.getUTCDate(), lastDay);
  return Date.UTC(
    year,
    month,
    day,
    a.getUTCHours(),
    a.getUTCMinutes(),
    a.getUTCSeconds(),
    a.getUTCMilliseconds(),
  );
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
