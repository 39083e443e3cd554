/**
 * Brings one PostgreSQL schema up to the newest Turnpike migration with node-pg-migrate's
 * programmatic runner. Every role may call it at start-up; concurrent callers are serialised.
 */
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { runner } from "node-pg-migrate";
import pg from "pg";
import { logger } from "../../shared/logger.js";
import { quoteIdent } from "../../shared/db/identifiers.js";

/**
 * The migrations shipped next to this module. Plain `.sql` files: node-pg-migrate reads them itself,
 * whereas `.ts` files would need a TypeScript loader that plain `node` in the image does not have.
 */
export const MIGRATIONS_DIR = fileURLToPath(new URL("./migrations", import.meta.url));

/** Name of node-pg-migrate's bookkeeping table, created inside the migrated schema. */
export const MIGRATIONS_TABLE = "pgmigrations";

/** Options for tests and bundlers; production callers use the defaults. */
export interface MigrateOptions {
  /** Directory holding the migration files (default: MIGRATIONS_DIR). */
  dir?: string;
}

/**
 * Advisory-lock key of one schema: a positive 53-bit integer (node-pg-migrate interpolates it into
 * SQL as a JS number, so it must stay a safe integer). Per schema, so that tests migrating their own
 * schemas in parallel do not wait on each other.
 */
export function migrationLockKey(schema: string): number {
  const digest = createHash("sha256").update(`turnpike-migrate:${schema}`).digest();
  return Number(digest.readBigUInt64BE() >> 11n);
}

/**
 * Creates `schema` if missing and applies every pending migration, recording them in
 * `<schema>.pgmigrations`. A second call is a no-op. Safe under concurrent callers (several replicas
 * starting at once): node-pg-migrate only *tries* its advisory lock and fails when it is taken, so we
 * first wait for the same lock on the same session (advisory locks are re-entrant per session), and
 * the loser then finds nothing left to run.
 *
 * @returns the names of the migrations applied by this call (empty when already up to date).
 */
export async function migrate(
  databaseUrl: string,
  schema: string,
  options: MigrateOptions = {},
): Promise<string[]> {
  quoteIdent(schema); // validate before anything touches the database
  const log = logger("migrate", { schema });
  const client = new pg.Client({ connectionString: databaseUrl, application_name: "turnpike-migrate" });
  const lockKey = migrationLockKey(schema);
  try {
    await client.connect();
    await client.query("SELECT pg_advisory_lock($1)", [lockKey]);
    try {
      const applied = await runner({
        dbClient: client,
        dir: options.dir ?? MIGRATIONS_DIR,
        direction: "up",
        schema,
        createSchema: true,
        migrationsTable: MIGRATIONS_TABLE,
        lockValue: lockKey,
        checkOrder: true,
        singleTransaction: true,
        log: (message: string) => log.debug(message),
      });
      if (applied.length > 0) log.info({ applied: applied.map((m) => m.name) }, "applied migrations");
      return applied.map((m) => m.name);
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [lockKey]);
    }
  } catch (cause) {
    throw new Error(`migrating PostgreSQL schema ${schema}`, { cause });
  } finally {
    await client.end().catch(() => undefined);
  }
}
