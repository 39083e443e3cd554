/**
 * The request records in PostgreSQL, shared by the collector (writes) and the gateway (reads).
 * Import from `runtime/shared/db/index.js`. The schema and its migrations belong to the collector
 * (runtime/collector/db/).
 */
export {
  RequestRecords,
  type DailyUsage,
  type StoredOutcome,
  type UpsertOutcome,
} from "./request-records.js";
export { type RequestRecord, utcDay } from "./request-sql.js";
export { chargedTokens } from "./charged-tokens.js";
export { quoteIdent } from "./identifiers.js";
