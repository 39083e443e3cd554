/**
 * PostgreSQL layer of the runtime: migrations and the request records. Import from
 * `runtime/shared/db/index.js`.
 */
export {
  migrate,
  migrationLockKey,
  MIGRATIONS_DIR,
  MIGRATIONS_TABLE,
  type MigrateOptions,
} from "./migrate.js";
export {
  RequestRecords,
  type DailyUsage,
  type StoredOutcome,
  type UpsertOutcome,
} from "./request-records.js";
export { type RequestRecord, utcDay } from "./request-sql.js";
export { chargedTokens } from "./charged-tokens.js";
export { quoteIdent } from "./identifiers.js";
