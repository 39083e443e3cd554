/**
 * Pure SQL building and row mapping for the request records: no I/O here, so the statements and the
 * mapping are testable without a database and reviewable in one place.
 */
import type { InferenceResult, RequestStatus, Target, WireTensor } from "../contracts/index.js";
import { chargedTokens } from "./charged-tokens.js";
import { quoteIdent } from "./identifiers.js";

/** A request as PostgreSQL records it, in the shape the gateway answers with. */
export interface RequestRecord {
  id: string;
  tenant: string;
  target: string;
  targetKind: Target["kind"];
  status: RequestStatus;
  outputs: WireTensor[] | null;
  error: { code: string; message: string } | null;
  reservedTokens: number;
  inputTokens: number;
  outputTokens: number;
  /** What the tenant was charged (see chargedTokens()). */
  chargedTokens: number;
  /** Answered from the result cache (no worker ran it). */
  cached: boolean;
  submittedAt: Date;
  finishedAt: Date | null;
}

/** One element of the JSON array that the upsert statement unpacks with jsonb_to_recordset. */
export interface RequestRowInput {
  id: string;
  tenant: string;
  target_kind: string;
  target: string;
  status: string;
  reserved_tokens: number;
  input_tokens: number;
  output_tokens: number;
  charged_tokens: number;
  cached: boolean;
  outputs: WireTensor[] | null;
  error_code: string | null;
  error_message: string | null;
  submitted_at_ms: number;
  finished_at_ms: number;
  queue_ms: number;
  infer_ms: number;
  steps: InferenceResult["steps"];
}

/** PostgreSQL text and jsonb cannot hold U+0000; free text from workers might. */
function withoutNul(text: string): string {
  return text.includes("\0") ? text.replaceAll("\0", "\uFFFD") : text;
}

/**
 * Maps results to statement rows: one row per request id (the first wins, as in the table), sorted
 * by id so that two collectors upserting overlapping batches lock rows in the same order and cannot
 * deadlock each other.
 */
export function toRequestRows(results: readonly InferenceResult[]): RequestRowInput[] {
  const byId = new Map<string, InferenceResult>();
  for (const result of results) {
    const id = result.requestId.toLowerCase();
    if (!byId.has(id)) byId.set(id, result);
  }
  return [...byId.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([id, r]) => ({
      id,
      tenant: r.tenant,
      target_kind: r.target.kind,
      target: r.target.name,
      status: r.status,
      reserved_tokens: r.reservedTokens,
      input_tokens: r.inputTokens,
      output_tokens: r.outputTokens,
      charged_tokens: chargedTokens(r),
      cached: r.cached !== undefined,
      outputs: r.outputs ?? null,
      error_code: r.error ? withoutNul(r.error.code) : null,
      error_message: r.error ? withoutNul(r.error.message) : null,
      submitted_at_ms: r.submittedAt,
      finished_at_ms: r.finishedAt,
      queue_ms: r.steps.reduce((sum, s) => sum + s.queuedMs, 0),
      infer_ms: r.steps.reduce((sum, s) => sum + s.inferMs, 0),
      steps: r.steps,
    }));
}

const COLUMNS = [
  "id",
  "tenant",
  "target_kind",
  "target",
  "status",
  "reserved_tokens",
  "input_tokens",
  "output_tokens",
  "charged_tokens",
  "cached",
  "outputs",
  "error_code",
  "error_message",
  "submitted_at",
  "finished_at",
  "queue_ms",
  "infer_ms",
  "steps",
] as const;

/**
 * The batch upsert: ONE statement (so one implicit transaction) that
 *  1. unpacks the batch from a single jsonb parameter ($1, an array of RequestRowInput),
 *  2. inserts every request whose id is new (ON CONFLICT DO NOTHING: a redelivered result changes
 *     nothing),
 *  3. adds to tenant_usage and tenant_model_usage only what step 2 really inserted (its RETURNING
 *     feeds both usage upserts),
 *  4. returns one row per request id: the inserted ones with `inserted = true`, plus the ones that
 *     already existed with what was recorded then (all sub-statements share one snapshot, so the
 *     second SELECT cannot see this statement's own inserts).
 */
export function upsertResultsSql(schema: string): string {
  const s = quoteIdent(schema);
  return `
WITH input AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(
    id uuid, tenant text, target_kind text, target text, status text,
    reserved_tokens bigint, input_tokens bigint, output_tokens bigint, charged_tokens bigint,
    cached boolean, outputs jsonb, error_code text, error_message text,
    submitted_at_ms double precision, finished_at_ms double precision,
    queue_ms double precision, infer_ms double precision, steps jsonb)
),
inserted AS (
  INSERT INTO ${s}.requests (${COLUMNS.join(", ")})
  SELECT id, tenant, target_kind, target, status, reserved_tokens, input_tokens, output_tokens,
         charged_tokens, coalesce(cached, false), outputs, error_code, error_message,
         to_timestamp(submitted_at_ms / 1000.0), to_timestamp(finished_at_ms / 1000.0),
         coalesce(queue_ms, 0), coalesce(infer_ms, 0), coalesce(steps, '[]'::jsonb)
  FROM input
  ORDER BY id
  ON CONFLICT (id) DO NOTHING
  RETURNING id, tenant, target_kind, target, status, charged_tokens, submitted_at
),
model_usage AS (
  INSERT INTO ${s}.tenant_model_usage AS m (tenant, day, target_kind, target, tokens, requests)
  SELECT tenant, (submitted_at AT TIME ZONE 'UTC')::date, target_kind, target, sum(charged_tokens), count(*)
  FROM inserted
  GROUP BY 1, 2, 3, 4
  ORDER BY 1, 2, 3, 4
  ON CONFLICT (tenant, day, target_kind, target)
  DO UPDATE SET tokens = m.tokens + EXCLUDED.tokens, requests = m.requests + EXCLUDED.requests
),
usage AS (
  INSERT INTO ${s}.tenant_usage AS u (tenant, day, tokens, requests)
  SELECT tenant, (submitted_at AT TIME ZONE 'UTC')::date, sum(charged_tokens), count(*)
  FROM inserted
  GROUP BY 1, 2
  ORDER BY 1, 2
  ON CONFLICT (tenant, day)
  DO UPDATE SET tokens = u.tokens + EXCLUDED.tokens, requests = u.requests + EXCLUDED.requests
)
SELECT id::text AS id, status, charged_tokens::float8 AS charged_tokens, true AS inserted FROM inserted
UNION ALL
SELECT r.id::text, r.status, r.charged_tokens::float8, false
FROM ${s}.requests r JOIN input i ON i.id = r.id`;
}

/** Columns read back for one record. */
export function selectRequestSql(schema: string): string {
  return `
SELECT id::text AS id, tenant, target_kind, target, status, outputs, error_code, error_message,
       reserved_tokens::float8 AS reserved_tokens, input_tokens::float8 AS input_tokens,
       output_tokens::float8 AS output_tokens, charged_tokens::float8 AS charged_tokens,
       cached, submitted_at, finished_at
FROM ${quoteIdent(schema)}.requests WHERE id = $1`;
}

/** One tenant's usage on one UTC day. */
export function selectUsageSql(schema: string): string {
  return `
SELECT tokens::float8 AS tokens, requests::float8 AS requests
FROM ${quoteIdent(schema)}.tenant_usage WHERE tenant = $1 AND day = $2::date`;
}

/** A row of selectRequestSql() as node-postgres returns it (float8 arrives as number). */
export interface RequestRow {
  id: string;
  tenant: string;
  target_kind: Target["kind"];
  target: string;
  status: RequestStatus;
  outputs: WireTensor[] | null;
  error_code: string | null;
  error_message: string | null;
  reserved_tokens: number;
  input_tokens: number;
  output_tokens: number;
  charged_tokens: number;
  cached: boolean;
  submitted_at: Date;
  finished_at: Date | null;
}

/** Maps a database row to the camelCase record. */
export function fromRequestRow(row: RequestRow): RequestRecord {
  return {
    id: row.id,
    tenant: row.tenant,
    target: row.target,
    targetKind: row.target_kind,
    status: row.status,
    outputs: row.outputs,
    error: row.error_code === null ? null : { code: row.error_code, message: row.error_message ?? "" },
    reservedTokens: row.reserved_tokens,
    inputTokens: row.input_tokens,
    outputTokens: row.output_tokens,
    chargedTokens: row.charged_tokens,
    cached: row.cached,
    submittedAt: row.submitted_at,
    finishedAt: row.finished_at,
  };
}

/** A calendar day as tenant_usage keys it. */
export const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

/** The UTC day (YYYY-MM-DD) of an epoch-ms instant: the tenant_usage day of a request submitted then. */
export function utcDay(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 10);
}
