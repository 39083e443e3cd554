/**
 * Section 8, request list: GET /v1/requests's query (TenantRecords.list, the gateway's own code) on
 * a scratch schema of the loopback PostgreSQL holding `rows` request records (half of them one big
 * tenant's, the rest over 99 others). Measures the first page, pages deep in the cursor walk and a
 * filtered page, and reads EXPLAIN to show the index serves them. Bounded: the insert runs under a
 * statement timeout, each measurement stops after `seconds`, and the schema is dropped at the end.
 */
import { performance } from "node:perf_hooks";
import pg from "pg";
import { migrate } from "../../runtime/collector/db/migrate.js";
import { listRequestsSql, type ListQuery } from "../../runtime/gateway/tenant/tenant-sql.js";
import { TenantRecords } from "../../runtime/gateway/tenant/tenant-records.js";
import { say, services, uniqueName } from "../lib/env.js";
import { summarize, type LatencySummary } from "../lib/stats.js";

export interface ListPageResult {
  label: string;
  latency: LatencySummary;
}

export interface RequestListResult {
  rows: number;
  bigTenantRows: number;
  insertSeconds: number;
  pageSize: number;
  pages: ListPageResult[];
  /** The plan of a cursor page: the node that reads `requests` and the index it uses. */
  plan: { node: string; index: string | null; usesIndex: boolean; sorts: boolean };
}

const BIG = "tenant-big";

/** Inserts `rows` records spread over the last 30 days in one statement (server side, no round trips). */
function fillSql(schema: string, rows: number): string {
  return `
INSERT INTO "${schema}".requests (id, tenant, target_kind, target, status, reserved_tokens, input_tokens,
  output_tokens, charged_tokens, submitted_at, finished_at)
SELECT gen_random_uuid(),
       CASE WHEN i % 2 = 0 THEN '${BIG}' ELSE 'tenant-' || (i % 99) END,
       'model', 'model-' || (i % 4),
       CASE WHEN i % 20 = 0 THEN 'failed' WHEN i % 50 = 1 THEN 'cancelled' ELSE 'succeeded' END,
       60, 10, 5, 15,
       now() - (i * (interval '30 days' / ${rows})),
       now() - (i * (interval '30 days' / ${rows})) + interval '200 milliseconds'
FROM generate_series(1, ${rows}) AS i`;
}

async function timed(seconds: number, max: number, fn: () => Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  const until = performance.now() + seconds * 1000;
  while (samples.length < max && performance.now() < until) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
  }
  return samples;
}

/** Finds the plan node that reads `requests`. */
function scanOf(plan: Record<string, unknown>): Record<string, unknown> | undefined {
  if (plan["Relation Name"] === "requests") return plan;
  for (const child of (plan.Plans as Record<string, unknown>[] | undefined) ?? []) {
    const found = scanOf(child);
    if (found) return found;
  }
  return undefined;
}

function hasSort(plan: Record<string, unknown>): boolean {
  return plan["Node Type"] === "Sort" || ((plan.Plans as Record<string, unknown>[]) ?? []).some(hasSort);
}

export async function requestList(rows: number, seconds: number, pageSize = 20): Promise<RequestListResult> {
  const schema = uniqueName("bench-list").replace(/-/g, "_");
  const { databaseUrl } = services();
  await migrate(databaseUrl, schema);
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: 2,
    application_name: "turnpike-bench-list",
  });
  try {
    say(`request list: inserting ${rows} records into ${schema}`);
    const t0 = performance.now();
    const client = await pool.connect();
    try {
      await client.query("SET statement_timeout = '300s'");
      await client.query(fillSql(schema, rows));
      await client.query(`ANALYZE "${schema}".requests`);
    } finally {
      client.release();
    }
    const insertSeconds = Math.round((performance.now() - t0) / 100) / 10;
    const records = new TenantRecords(pool, schema);
    const base: ListQuery = { tenant: BIG, limit: pageSize };
    const pages: ListPageResult[] = [];

    pages.push({
      label: "first page",
      latency: summarize(await timed(seconds, 2_000, () => records.list(base))),
    });
    // Walk the cursor: every page's cost, wherever the page is.
    let after = (await records.list(base)).next;
    const deep = await timed(seconds, 2_000, async () => {
      const page = await records.list({ ...base, after });
      after = page.next ?? (await records.list(base)).next;
    });
    pages.push({ label: "cursor walk (next pages)", latency: summarize(deep) });
    // 100,000 rows down: where OFFSET would have to skip them all.
    const far = await pool.query<{ position: string; id: string }>(
      `SELECT to_char(submitted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS position, id::text
       FROM "${schema}".requests WHERE tenant = $1 ORDER BY submitted_at DESC, id DESC OFFSET 100000 LIMIT 1`,
      [BIG],
    );
    const deepAfter = { submittedAt: far.rows[0]!.position, id: far.rows[0]!.id };
    pages.push({
      label: "page 5,000 (100,000 rows down)",
      latency: summarize(await timed(seconds, 2_000, () => records.list({ ...base, after: deepAfter }))),
    });
    pages.push({
      label: "status=failed (5% of rows)",
      latency: summarize(await timed(seconds, 2_000, () => records.list({ ...base, status: "failed" }))),
    });

    const { text, values } = listRequestsSql(schema, { ...base, after: deepAfter });
    const explained = await pool.query<{ "QUERY PLAN": [{ Plan: Record<string, unknown> }] }>(
      `EXPLAIN (FORMAT JSON) ${text}`,
      values,
    );
    const top = explained.rows[0]!["QUERY PLAN"][0].Plan;
    const scan = scanOf(top) ?? {};
    const index = (scan["Index Name"] as string | undefined) ?? null;
    const bigTenantRows = Math.ceil(rows / 2);
    return {
      rows,
      bigTenantRows,
      insertSeconds,
      pageSize,
      pages,
      plan: {
        node: `${String(scan["Node Type"] ?? "?")}${scan["Scan Direction"] ? ` ${String(scan["Scan Direction"])}` : ""}`,
        index,
        usesIndex: index === "requests_tenant_submitted_at_id_idx",
        sorts: hasSort(top),
      },
    };
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await pool.end();
  }
}
