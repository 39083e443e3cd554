/**
 * Reads and writes Turnpike's request records and per-tenant usage in one PostgreSQL schema. The
 * collector writes (batched, idempotent); the gateway reads.
 */
import type pg from "pg";
import { UUID_PATTERN, type InferenceResult, type RequestStatus } from "../contracts/index.js";
import {
  DAY_PATTERN,
  fromRequestRow,
  selectRequestSql,
  selectUsageSql,
  toRequestRows,
  upsertResultsSql,
  type RequestRecord,
  type RequestRow,
} from "./request-sql.js";

/** What the table holds for one request id after an upsert. */
export interface StoredOutcome {
  /** True when this call inserted the row; false when it already existed (a redelivery). */
  inserted: boolean;
  status: RequestStatus;
  /** Tokens the recorded result charges: settle the quota with this, not with a redelivered copy. */
  chargedTokens: number;
}

/** Result of one upsertResults() call. */
export interface UpsertOutcome {
  /** Request ids this call inserted (each counted once in tenant_usage), in id order. */
  inserted: string[];
  /**
   * Every request id of the batch (lowercase) with what is recorded for it. An id inserted
   * concurrently by another transaction that committed after this statement's snapshot may be
   * missing; callers fall back to the result they hold.
   */
  stored: Map<string, StoredOutcome>;
}

/** Tenant usage of one day. */
export interface DailyUsage {
  tokens: number;
  requests: number;
}

/** Request records and tenant usage in `schema` (created by migrate()). */
export class RequestRecords {
  private readonly upsertSql: string;
  private readonly selectSql: string;
  private readonly usageSql: string;

  /** @param pool a pool the caller owns (and ends); @param schema an already migrated schema. */
  constructor(
    private readonly pool: pg.Pool,
    schema: string,
  ) {
    this.upsertSql = upsertResultsSql(schema);
    this.selectSql = selectRequestSql(schema);
    this.usageSql = selectUsageSql(schema);
  }

  /**
   * Records a batch of final results in ONE statement (hence one transaction): new ids are inserted
   * and counted in tenant_usage, ids already present change nothing. Duplicate ids inside the batch
   * count once. Safe to call again with the same results (redelivery) and from several collectors.
   */
  async upsertResults(results: readonly InferenceResult[]): Promise<UpsertOutcome> {
    const rows = toRequestRows(results);
    if (rows.length === 0) return { inserted: [], stored: new Map() };
    let answer: pg.QueryResult<{
      id: string;
      status: RequestStatus;
      charged_tokens: number;
      inserted: boolean;
    }>;
    try {
      answer = await this.pool.query(this.upsertSql, [JSON.stringify(rows)]);
    } catch (cause) {
      throw new Error(`recording ${rows.length} results in PostgreSQL`, { cause });
    }
    const inserted: string[] = [];
    const stored = new Map<string, StoredOutcome>();
    for (const row of answer.rows) {
      if (row.inserted) inserted.push(row.id);
      stored.set(row.id, { inserted: row.inserted, status: row.status, chargedTokens: row.charged_tokens });
    }
    inserted.sort();
    return { inserted, stored };
  }

  /** The record of one request, or undefined when there is none (or `id` is not a UUID). */
  async get(id: string): Promise<RequestRecord | undefined> {
    // A malformed id would make PostgreSQL raise 22P02; for a lookup it simply does not exist.
    if (!UUID_PATTERN.test(id)) return undefined;
    try {
      const answer = await this.pool.query<RequestRow>(this.selectSql, [id]);
      const row = answer.rows[0];
      return row ? fromRequestRow(row) : undefined;
    } catch (cause) {
      throw new Error(`reading request ${id} from PostgreSQL`, { cause });
    }
  }

  /** Tokens and requests of `tenant` on `day` (YYYY-MM-DD, UTC), or undefined when none were recorded. */
  async usage(tenant: string, day: string): Promise<DailyUsage | undefined> {
    if (!DAY_PATTERN.test(day)) throw new Error(`usage day must be YYYY-MM-DD, got ${JSON.stringify(day)}`);
    try {
      const answer = await this.pool.query<DailyUsage>(this.usageSql, [tenant, day]);
      const row = answer.rows[0];
      return row ? { tokens: row.tokens, requests: row.requests } : undefined;
    } catch (cause) {
      throw new Error(`reading usage of tenant ${tenant} on ${day} from PostgreSQL`, { cause });
    }
  }
}
