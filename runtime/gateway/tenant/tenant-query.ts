/**
 * Reading the query strings of the tenant's API, pure: every bad value is a 400 that says which
 * parameter and why. The list cursor is opaque to clients: base64url of the last row's position.
 */
import {
  FINAL_REQUEST_STATUSES,
  UUID_PATTERN,
  type FinalRequestStatus,
} from "../../shared/contracts/index.js";
import { ApiError } from "../errors.js";
import type { ListPosition, ListQuery } from "./tenant-sql.js";

/** Page size of GET /v1/requests: default and most. */
export const LIST_LIMIT = { default: 20, max: 100 } as const;
/** Most days GET /v1/usage/daily covers in one call. */
export const MAX_DAILY_RANGE_DAYS = 366;

const DAY_MS = 86_400_000;
const NAME = /^[a-z0-9]([-a-z0-9]{0,251}[a-z0-9])?$/;
const POSITION = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

type Query = Record<string, unknown>;

function invalid(name: string, why: string): ApiError {
  return new ApiError(
    "invalid_parameter",
    `query parameter ${name}: ${why}`,
    {},
    { details: { parameter: name } },
  );
}

/** The single string value of a query parameter; repeated or non-string values are refused. */
function single(query: Query, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw invalid(name, "give it once");
  return value;
}

/** The cursor of the page after the one ending at `position`. */
export function encodeCursor(position: ListPosition): string {
  return Buffer.from(JSON.stringify([position.submittedAt, position.id]), "utf8").toString("base64url");
}

/** The position a cursor stands for; a cursor this API did not hand out is a 400 invalid_cursor. */
export function decodeCursor(cursor: string): ListPosition {
  const refuse = () =>
    new ApiError(
      "invalid_cursor",
      "the cursor is not one GET /v1/requests handed out; start again without it",
    );
  if (cursor.length > 200 || !/^[\w-]+$/.test(cursor)) throw refuse();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw refuse();
  }
  if (!Array.isArray(parsed) || parsed.length !== 2) throw refuse();
  const [submittedAt, id] = parsed as unknown[];
  if (typeof submittedAt !== "string" || !POSITION.test(submittedAt) || Number.isNaN(Date.parse(submittedAt)))
    throw refuse();
  if (typeof id !== "string" || !UUID_PATTERN.test(id)) throw refuse();
  return { submittedAt, id };
}

/** GET /v1/requests?status=&model=&since=&limit=&cursor= for `tenant`. */
export function parseListQuery(tenant: string, query: Query): ListQuery {
  const out: ListQuery = { tenant, limit: LIST_LIMIT.default };
  const status = single(query, "status");
  if (status !== undefined) {
    if (status === "queued" || status === "running") {
      throw invalid(
        "status",
        `${status} requests have no record yet; GET /v1/usage lists those in flight, GET /v1/requests/{id} reads one`,
      );
    }
    if (!(FINAL_REQUEST_STATUSES as readonly string[]).includes(status)) {
      throw invalid("status", `must be one of ${FINAL_REQUEST_STATUSES.join(", ")}`);
    }
    out.status = status as FinalRequestStatus;
  }
  const model = single(query, "model");
  if (model !== undefined) {
    if (!NAME.test(model)) throw invalid("model", "must be a model or pipeline name (a lowercase DNS name)");
    out.model = model;
  }
  const since = single(query, "since");
  if (since !== undefined) {
    const ms = Date.parse(since);
    if (!/^\d{4}-\d{2}-\d{2}/.test(since) || Number.isNaN(ms)) {
      throw invalid(
        "since",
        "must be an ISO 8601 date or date-time, e.g. 2026-12-01 or 2026-12-01T08:00:00Z",
      );
    }
    out.since = new Date(ms).toISOString();
  }
  const limit = single(query, "limit");
  if (limit !== undefined) {
    const n = Number(limit);
    if (!/^\d+$/.test(limit) || n < 1 || n > LIST_LIMIT.max) {
      throw invalid("limit", `must be a whole number from 1 to ${LIST_LIMIT.max}`);
    }
    out.limit = n;
  }
  const cursor = single(query, "cursor");
  if (cursor !== undefined) out.after = decodeCursor(cursor);
  return out;
}

/** A YYYY-MM-DD that names a real calendar day, as epoch ms of its 00:00 UTC. */
function dayOf(name: string, value: string): number {
  const ms = Date.parse(`${value}T00:00:00Z`);
  if (!DAY.test(value) || Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== value) {
    throw invalid(name, "must be a calendar day as YYYY-MM-DD (UTC)");
  }
  return ms;
}

/**
 * GET /v1/usage/daily?from=&to= : both UTC days, inclusive, at most MAX_DAILY_RANGE_DAYS apart.
 * Defaults: `to` today, `from` the first day of `to`'s month.
 */
export function parseDailyQuery(query: Query, nowMs: number): { from: string; to: string; days: string[] } {
  const toText = single(query, "to") ?? new Date(nowMs).toISOString().slice(0, 10);
  const to = dayOf("to", toText);
  const fromText = single(query, "from") ?? `${toText.slice(0, 7)}-01`;
  const from = dayOf("from", fromText);
  if (from > to) throw invalid("from", `${fromText} is after to=${toText}`);
  const count = (to - from) / DAY_MS + 1;
  if (count > MAX_DAILY_RANGE_DAYS) {
    throw invalid("from", `the range covers ${count} days; at most ${MAX_DAILY_RANGE_DAYS} per call`);
  }
  const days = Array.from({ length: count }, (_, i) =>
    new Date(from + i * DAY_MS).toISOString().slice(0, 10),
  );
  return { from: fromText, to: toText, days };
}
