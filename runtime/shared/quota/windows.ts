/**
 * Pure time-window arithmetic of the quota: fixed UTC calendar-month, day and minute windows, the names the Redis
 * keys use, and how long a refused client should wait.
 */

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/** The windows a reservation made at `nowMs` charges. */
export interface QuotaWindows {
  /** UTC calendar month, e.g. `2025-01` (the tokensMonth key suffix). */
  month: string;
  /** UTC date, e.g. `2025-01-31` (the tokensDay key suffix). */
  day: string;
  /** Minutes since the epoch (the tokensMinute / requestsMinute key suffix). */
  minute: number;
  /** Whole seconds until the minute window ends (at least 1). */
  secondsToMinuteEnd: number;
  /** Whole seconds until the day window ends (at least 1). */
  secondsToDayEnd: number;
  /** Whole seconds until the month window ends (at least 1). */
  secondsToMonthEnd: number;
  /** Epoch ms at which each window ends (when its counter starts again from zero). */
  endsAt: { minute: number; day: number; month: number };
}

/** The day's names and its month's end, kept for the day last asked about (every request asks). */
let lastDay: { dayStart: number; month: string; day: string; monthEnd: number } | undefined;

function dayOf(dayStart: number) {
  if (lastDay?.dayStart !== dayStart) {
    const date = new Date(dayStart);
    const iso = date.toISOString();
    const monthEnd = Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1);
    lastDay = { dayStart, month: iso.slice(0, 7), day: iso.slice(0, 10), monthEnd };
  }
  return lastDay;
}

/** Computes the windows at `nowMs`. */
export function windowsAt(nowMs: number): QuotaWindows {
  const minute = Math.floor(nowMs / MINUTE_MS);
  const dayStart = Math.floor(nowMs / DAY_MS) * DAY_MS;
  const { month, day, monthEnd } = dayOf(dayStart);
  const minuteEnd = (minute + 1) * MINUTE_MS;
  const seconds = (end: number) => Math.max(1, Math.ceil((end - nowMs) / 1000));
  return {
    month,
    day,
    minute,
    secondsToMinuteEnd: seconds(minuteEnd),
    secondsToDayEnd: seconds(dayStart + DAY_MS),
    secondsToMonthEnd: seconds(monthEnd),
    endsAt: { minute: minuteEnd, day: dayStart + DAY_MS, month: monthEnd },
  };
}

/**
 * Key lifetimes: a window outlives itself (month: 62 days, day: 2 days, minute: 2 minutes) so
 * refunds still land.
 */
export const QUOTA_TTL_SECONDS = {
  month: 62 * 86_400,
  day: 2 * 86_400,
  minute: 120,
  reservation: 2 * 86_400,
  inFlight: 2 * 86_400,
} as const;

/** The limit names, in the order the reserve script checks them. */
export const QUOTA_LIMIT_NAMES = [
  "tokensPerMonth",
  "tokensPerDay",
  "tokensPerMinute",
  "requestsPerMinute",
  "concurrentRequests",
] as const;
/** Name of one quota limit (the field of TenantLimits and of the limits hash). */
export type QuotaLimitName = (typeof QUOTA_LIMIT_NAMES)[number];

/** Seconds until a refusal by `limit` can clear: the window's end, or 1 s for concurrency. */
export function retryAfterSeconds(limit: QuotaLimitName, windows: QuotaWindows): number {
  switch (limit) {
    case "tokensPerMonth":
      return windows.secondsToMonthEnd;
    case "tokensPerDay":
      return windows.secondsToDayEnd;
    case "tokensPerMinute":
    case "requestsPerMinute":
      return windows.secondsToMinuteEnd;
    case "concurrentRequests":
      // Nothing to wait for but another request finishing: ask for a short, polite pause.
      return 1;
  }
}
