/**
 * The tenant's own records in PostgreSQL, read for the tenant API: a page of its requests, its
 * tokens by model over a range of days, and per-day totals. Every read is scoped to one tenant.
 */
import type pg from "pg";
import { ApiError } from "../errors.js";
import {
  dailyModelUsageSql,
  dailyUsageSql,
  listRequestsSql,
  usageByModelSql,
  type ListPosition,
  type ListQuery,
  type ListRow,
} from "./tenant-sql.js";

/** Tokens and requests of one model or pipeline. */
export interface ModelUsage {
  kind: "model" | "pipeline";
  name: string;
  tokens: number;
  requests: number;
}

/** Usage by model on one day and over a range ending that day. */
export interface UsageByModel {
  day: ModelUsage[];
  range: ModelUsage[];
}

/** One day's totals with its split by model. */
export interface DayUsage {
  day: string;
  tokens: number;
  requests: number;
  byModel: ModelUsage[];
}

/** Reads one installation schema's records for the tenant API. */
export class TenantRecords {
  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
  ) {}

  /** A page of `q.tenant`'s requests, newest first, and where the next page starts (if any). */
  async list(q: ListQuery): Promise<{ rows: ListRow[]; next?: ListPosition }> {
    const { text, values } = listRequestsSql(this.schema, q);
    const { rows } = await this.query<ListRow>("listing requests", text, values);
    if (rows.length <= q.limit) return { rows };
    const page = rows.slice(0, q.limit);
    const last = page.at(-1)!;
    return { rows: page, next: { submittedAt: last.position, id: last.id } };
  }

  /** Tokens and requests by model on `day` and over [`from`, `day`] (UTC days). */
  async usageByModel(tenant: string, from: string, day: string): Promise<UsageByModel> {
    const { rows } = await this.query<{
      target_kind: "model" | "pipeline";
      target: string;
      tokens_day: number;
      requests_day: number;
      tokens_range: number;
      requests_range: number;
    }>("reading usage by model", usageByModelSql(this.schema), [tenant, from, day]);
    return {
      day: rows
        .filter((r) => r.requests_day > 0)
        .map((r) => ({
          kind: r.target_kind,
          name: r.target,
          tokens: r.tokens_day,
          requests: r.requests_day,
        })),
      range: rows.map((r) => ({
        kind: r.target_kind,
        name: r.target,
        tokens: r.tokens_range,
        requests: r.requests_range,
      })),
    };
  }

  /** Every day of `days` (sorted YYYY-MM-DD) with its totals; days without usage are zero. */
  async daily(tenant: string, days: readonly string[]): Promise<DayUsage[]> {
    const from = days[0]!;
    const to = days.at(-1)!;
    const [totals, models] = await Promise.all([
      this.query<{ day: string; tokens: number; requests: number }>(
        "reading daily usage",
        dailyUsageSql(this.schema),
        [tenant, from, to],
      ),
      this.query<{
        day: string;
        target_kind: "model" | "pipeline";
        target: string;
        tokens: number;
        requests: number;
      }>("reading daily usage by model", dailyModelUsageSql(this.schema), [tenant, from, to]),
    ]);
    const byDay = new Map(totals.rows.map((r) => [r.day, r]));
    const modelsByDay = new Map<string, ModelUsage[]>();
    for (const r of models.rows) {
      const list = modelsByDay.get(r.day) ?? [];
      list.push({ kind: r.target_kind, name: r.target, tokens: r.tokens, requests: r.requests });
      modelsByDay.set(r.day, list);
    }
    return days.map((day) => ({
      day,
      tokens: byDay.get(day)?.tokens ?? 0,
      requests: byDay.get(day)?.requests ?? 0,
      byModel: modelsByDay.get(day) ?? [],
    }));
  }

  private async query<R extends pg.QueryResultRow>(what: string, text: string, values: unknown[]) {
    try {
      return await this.pool.query<R>(text, values);
    } catch (cause) {
      throw new ApiError("service_unavailable", `${what} failed; retry`, { "retry-after": 2 }, { cause });
    }
  }
}
