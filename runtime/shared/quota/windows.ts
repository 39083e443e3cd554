/**
 * Pure time-window arithmetic of the quota: fixed UTC day and minute windows, the names the Redis
 * keys use, and how long a refused client should wait.
 */

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/** The windows a reservation made at `nowMs` charges. */
export interface QuotaWindows {
  /** UTC date, e.g. `2025-01-31` (the tokensDay key suffix). */
  day: string;
  /** Minutes since the epoch (the tokensMinute / requestsMinute key suffix). */
  minute: number;
  /** Whole seconds until the minute window ends (at least 1). */
  secondsToMinuteEnd: number;
  /** Whole seconds until the day window ends (at least 1). */
  secondsToDayEnd: number;
}

/** Computes the windows at `nowMs`. */
export function windowsAt(nowMs: number): QuotaWindows {
  const minute = Math.floor(nowMs / MINUTE_MS);
  const dayStart = Math.floor(nowMs / DAY_MS) * DAY_MS;
  return {
    day: new Date(dayStart).toISOString().slice(0, 10),
    minute,
    secondsToMinuteEnd: Math.max(1, Math.ceil(((minute + 1) * MINUTE_MS - nowMs) / 1000)),
    secondsToDayEnd: Math.max(1, Math.ceil((dayStart + DAY_MS - nowMs) / 1000)),
  };
}

/** Key lifetimes: a window outlives itself (day: 2 days, minute: 2 minutes) so refunds still land. */
export const QUOTA_TTL_SECONDS = {
  day: 2 * 86_400,
  minute: 120,
  reservation: 2 * 86_400,
  inFlight: 2 * 86_400,
} as const;

/** The limit names, in the order the reserve script checks them. */
export const QUOTA_LIMIT_NAMES = [
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
