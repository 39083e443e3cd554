/**
 * The SQL of the tenant's own API, pure: the keyset-paginated request list, usage by model and
 * per-day totals. Every statement is scoped by tenant in its WHERE clause; no I/O here.
 */
import { quoteIdent } from "../../shared/db/identifiers.js";
import type { FinalRequestStatus } from "../../shared/contracts/index.js";

/** Where a page starts: strictly older than this (submitted_at, id), as the previous page ended. */
export interface ListPosition {
  /** submitted_at with microseconds, UTC (`2026-12-04T07:33:58.123456Z`). */
  submittedAt: string;
  id: string;
}

/** A filtered page of one tenant's requests. */
export interface ListQuery {
  tenant: string;
  status?: FinalRequestStatus;
  /** Model or pipeline name. */
  model?: string;
  /** ISO instant: only requests submitted at or after it. */
  since?: string;
  after?: ListPosition;
  limit: number;
}

/**
 * Newest first by (submitted_at, id): one backward range scan of
 * requests_tenant_submitted_at_id_idx, the cursor being a row comparison the index can seek to (no
 * OFFSET, so page 1,000 costs what page 1 does). Only the conditions asked for are in the text, so
 * each plan is made for its own filters. One more row than asked tells whether a next page exists.
 */
export function listRequestsSql(schema: string, q: ListQuery): { text: string; values: unknown[] } {
  const values: unknown[] = [q.tenant];
  const where = ["tenant = $1"];
  const param = (value: unknown) => `$${values.push(value)}`;
  if (q.status) where.push(`status = ${param(q.status)}`);
  if (q.model) where.push(`target = ${param(q.model)}`);
  if (q.since) where.push(`submitted_at >= ${param(q.since)}::timestamptz`);
  if (q.after) {
    where.push(
      `(submitted_at, id) < (${param(q.after.submittedAt)}::timestamptz, ${param(q.after.id)}::uuid)`,
    );
  }
  const text = `
SELECT id::text AS id, target_kind, target, status, error_code, error_message,
       reserved_tokens::float8 AS reserved_tokens, input_tokens::float8 AS input_tokens,
       output_tokens::float8 AS output_tokens, charged_tokens::float8 AS charged_tokens,
       submitted_at, finished_at,
       to_char(submitted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS position
FROM ${quoteIdent(schema)}.requests
WHERE ${where.join(" AND ")}
ORDER BY submitted_at DESC, id DESC
LIMIT ${param(q.limit + 1)}`;
  return { text, values };
}

/** A row of listRequestsSql(). */
export interface ListRow {
  id: string;
  target_kind: "model" | "pipeline";
  target: string;
  status: FinalRequestStatus;
  error_code: string | null;
  error_message: string | null;
  reserved_tokens: number;
  input_tokens: number;
  output_tokens: number;
  charged_tokens: number;
  submitted_at: Date;
  finished_at: Date | null;
  position: string;
}

/**
 * Tokens and requests by model and pipeline over [$2, $3] (UTC days), with the part of day $3:
 * "today and this month" in one statement over the month's few rows per model.
 */
export function usageByModelSql(schema: string): string {
  return `
SELECT target_kind, target,
       coalesce(sum(tokens) FILTER (WHERE day = $3::date), 0)::float8 AS tokens_day,
       coalesce(sum(requests) FILTER (WHERE day = $3::date), 0)::float8 AS requests_day,
       sum(tokens)::float8 AS tokens_range, sum(requests)::float8 AS requests_range
FROM ${quoteIdent(schema)}.tenant_model_usage
WHERE tenant = $1 AND day BETWEEN $2::date AND $3::date
GROUP BY target_kind, target
ORDER BY target, target_kind`;
}

/** Per-day totals of one tenant over [$2, $3] from tenant_usage (days without usage are absent). */
export function dailyUsageSql(schema: string): string {
  return `
SELECT to_char(day, 'YYYY-MM-DD') AS day, tokens::float8 AS tokens, requests::float8 AS requests
FROM ${quoteIdent(schema)}.tenant_usage
WHERE tenant = $1 AND day BETWEEN $2::date AND $3::date
ORDER BY day`;
}

/** Per-day, per-model totals of one tenant over [$2, $3] from tenant_model_usage. */
export function dailyModelUsageSql(schema: string): string {
  return `
SELECT to_char(day, 'YYYY-MM-DD') AS day, target_kind, target,
       tokens::float8 AS tokens, requests::float8 AS requests
FROM ${quoteIdent(schema)}.tenant_model_usage
WHERE tenant = $1 AND day BETWEEN $2::date AND $3::date
ORDER BY day, target, target_kind`;
}
