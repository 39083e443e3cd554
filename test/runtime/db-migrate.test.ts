// Migrations against the real PostgreSQL: a fresh schema gets both tables, a second run is a no-op,
// and concurrent callers (replicas starting together) neither fail nor apply anything twice.
import { readdirSync } from "node:fs";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import {
  MIGRATIONS_DIR,
  MIGRATIONS_TABLE,
  migrate,
  migrationLockKey,
} from "../../runtime/collector/db/migrate.js";
import { quoteIdent } from "../../runtime/shared/db/index.js";
import { serviceUrls } from "../harness/services.js";
import { dropSchema, uniqueSchema } from "./helpers/collector-fixtures.js";

const { databaseUrl } = serviceUrls();
const created: string[] = [];
/** Every shipped migration, in the order node-pg-migrate applies them. */
const ALL = readdirSync(MIGRATIONS_DIR)
  .filter((f) => f.endsWith(".sql"))
  .map((f) => f.replace(/\.sql$/, ""))
  .sort();

afterAll(async () => {
  for (const schema of created) await dropSchema(databaseUrl, schema);
});

/** Runs one query on a short-lived client. */
async function query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

describe("migrate()", () => {
  it("creates the schema and tables, and a second run applies nothing", async () => {
    const schema = uniqueSchema("db_migrate");
    created.push(schema);

    const first = await migrate(databaseUrl, schema);
    expect(first).toEqual(ALL);
    expect(ALL).toContain("1767225600000_requests-and-usage");
    expect(ALL).toContain("1767400000000_cached-requests");

    const tables = await query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name",
      [schema],
    );
    expect(tables.map((t) => t.table_name)).toEqual([
      MIGRATIONS_TABLE,
      "requests",
      "tenant_model_usage",
      "tenant_usage",
    ]);

    const indexes = await query<{ indexdef: string }>(
      "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'requests'",
      [schema],
    );
    expect(indexes.map((i) => i.indexdef).join("\n")).toMatch(/\(tenant, finished_at\)/);
    // GET /v1/requests pages by this one (keyset on submitted_at, id).
    expect(indexes.map((i) => i.indexdef).join("\n")).toMatch(/\(tenant, submitted_at, id\)/);

    const usagePk = await query<{ column_name: string }>(
      `SELECT k.column_name FROM information_schema.table_constraints c
       JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name)
       WHERE c.table_schema = $1 AND c.table_name = 'tenant_usage' AND c.constraint_type = 'PRIMARY KEY'
       ORDER BY k.ordinal_position`,
      [schema],
    );
    expect(usagePk.map((k) => k.column_name)).toEqual(["tenant", "day"]);

    const second = await migrate(databaseUrl, schema);
    expect(second).toEqual([]);
    const recorded = await query<{ name: string }>(
      `SELECT name FROM ${quoteIdent(schema)}.${MIGRATIONS_TABLE}`,
    );
    expect(recorded.map((r) => r.name)).toEqual(ALL);

    const cached = await query<{ column_default: string; is_nullable: string }>(
      `SELECT column_default, is_nullable FROM information_schema.columns
       WHERE table_schema = $1 AND table_name = 'requests' AND column_name = 'cached'`,
      [schema],
    );
    expect(cached).toEqual([{ column_default: "false", is_nullable: "NO" }]);
  });

  it("serialises concurrent callers on one fresh schema: all succeed, each migration runs once", async () => {
    const schema = uniqueSchema("db_migrate_race");
    created.push(schema);

    const runs = await Promise.all(Array.from({ length: 6 }, () => migrate(databaseUrl, schema)));
    expect(runs.flat()).toEqual(ALL);
    const recorded = await query<{ n: string }>(
      `SELECT count(*)::text AS n FROM ${quoteIdent(schema)}.${MIGRATIONS_TABLE}`,
    );
    expect(recorded[0]?.n).toBe(String(ALL.length));
  });

  it("uses a different lock per schema and refuses names it would have to escape", async () => {
    expect(migrationLockKey("a")).not.toBe(migrationLockKey("b"));
    expect(Number.isSafeInteger(migrationLockKey("turnpike"))).toBe(true);
    await expect(migrate(databaseUrl, 'x"; DROP TABLE y; --')).rejects.toThrow(
      /invalid PostgreSQL schema name/,
    );
  });
});
