/**
 * The documents of the tenant API, pure: GET /v1/usage (every configured limit with used,
 * remaining and when its window resets; tokens by model today and this month; requests in flight)
 * and the items of GET /v1/requests.
 */
import type { QuotaLimitName, TenantUsage } from "../../shared/quota/index.js";
import { QUOTA_LIMIT_NAMES, windowsAt } from "../../shared/quota/index.js";
import type { ModelUsage, UsageByModel } from "./tenant-records.js";
import type { ListRow } from "./tenant-sql.js";

/** One limit as GET /v1/usage reports it. */
export interface LimitView {
  limit: number;
  used: number;
  remaining: number;
  /** When the window's counter starts again from zero; null for concurrentRequests (no window). */
  resetsAt: string | null;
}

/** Everything GET /v1/usage needs, read beforehand. */
export interface UsageInputs {
  tenant: string;
  nowMs: number;
  /** Redis: the windows current at nowMs and the limits. */
  quota: TenantUsage;
  inFlight: { id: string; reservedAt: number }[];
  /** PostgreSQL: by model today and this month. */
  byModel: UsageByModel;
}

const iso = (ms: number) => new Date(ms).toISOString();

function used(name: QuotaLimitName, q: TenantUsage): number {
  switch (name) {
    case "tokensPerMonth":
      return q.tokensThisMonth;
    case "tokensPerDay":
      return q.tokensToday;
    case "tokensPerMinute":
      return q.tokensThisMinute;
    case "requestsPerMinute":
      return q.requestsThisMinute;
    case "concurrentRequests":
      return q.inFlight;
  }
}

function totals(models: readonly ModelUsage[]) {
  return {
    tokens: models.reduce((sum, m) => sum + m.tokens, 0),
    requests: models.reduce((sum, m) => sum + m.requests, 0),
  };
}

/** The GET /v1/usage document. */
export function usageView(input: UsageInputs) {
  const { quota, nowMs } = input;
  const w = windowsAt(nowMs);
  const resets: Record<QuotaLimitName, string | null> = {
    tokensPerMonth: iso(w.endsAt.month),
    tokensPerDay: iso(w.endsAt.day),
    tokensPerMinute: iso(w.endsAt.minute),
    requestsPerMinute: iso(w.endsAt.minute),
    concurrentRequests: null,
  };
  const limits: Partial<Record<QuotaLimitName, LimitView>> = {};
  for (const name of QUOTA_LIMIT_NAMES) {
    const limit = quota.limits[name];
    if (limit === undefined) continue;
    const u = used(name, quota);
    limits[name] = { limit, used: u, remaining: Math.max(0, limit - u), resetsAt: resets[name] };
  }
  return {
    tenant: input.tenant,
    at: iso(nowMs),
    limits,
    inFlight: {
      count: quota.inFlight,
      requests: input.inFlight.map((r) => ({ id: r.id, reservedAt: iso(r.reservedAt) })),
    },
    // Recorded (finished) requests; Redis's windows above also hold reservations still in flight.
    tokens: {
      today: { day: w.day, ...totals(input.byModel.day), byModel: input.byModel.day },
      thisMonth: { month: w.month, ...totals(input.byModel.range), byModel: input.byModel.range },
    },
  };
}

/** One item of GET /v1/requests. */
export function listItemView(r: ListRow) {
  return {
    id: r.id,
    status: r.status,
    target: { kind: r.target_kind, name: r.target },
    submittedAt: r.submitted_at.toISOString(),
    finishedAt: r.finished_at ? r.finished_at.toISOString() : null,
    tokens: {
      reserved: r.reserved_tokens,
      input: r.input_tokens,
      output: r.output_tokens,
      charged: r.charged_tokens,
    },
    ...(r.error_code !== null ? { error: { code: r.error_code, message: r.error_message ?? "" } } : {}),
  };
}
