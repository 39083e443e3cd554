/**
 * Test fixtures for the collector and the PostgreSQL layer: a throwaway migrated schema and
 * realistic InferenceResults. Everything talks to the real PostgreSQL from hack/services.sh.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import type { InferenceResult } from "../../../runtime/shared/contracts/index.js";
import { migrate } from "../../../runtime/collector/db/migrate.js";
import { serviceUrls, uniqueName } from "../../harness/services.js";

/** A migrated schema of its own, with a pool; drop() removes both. */
export interface TestSchema {
  schema: string;
  pool: pg.Pool;
  drop(): Promise<void>;
}

/** A unique schema name usable by quoteIdent() (uniqueName() with `_` for readability in psql). */
export function uniqueSchema(prefix: string): string {
  return uniqueName(prefix).replaceAll("-", "_");
}

/** Drops `schema` and everything in it (tests call this in afterEach/afterAll). */
export async function dropSchema(databaseUrl: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** Creates and migrates a fresh schema. */
export async function migratedSchema(prefix: string): Promise<TestSchema> {
  const { databaseUrl } = serviceUrls();
  const schema = uniqueSchema(prefix);
  await migrate(databaseUrl, schema);
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  return {
    schema,
    pool,
    async drop() {
      await pool.end();
      await dropSchema(databaseUrl, schema);
    },
  };
}

/** A final result as the last worker of a route publishes it; override any field. */
export function makeResult(overrides: Partial<InferenceResult> = {}): InferenceResult {
  const submittedAt = Date.UTC(2026, 0, 15, 12, 0, 0);
  return {
    requestId: randomUUID(),
    tenant: "acme",
    target: { kind: "model", name: "ocr-rec" },
    status: "succeeded",
    outputs: [
      { name: "text", datatype: "BYTES", shape: [1], data: [Buffer.from("hello").toString("base64")] },
    ],
    reservedTokens: 300,
    inputTokens: 1,
    outputTokens: 5,
    submittedAt,
    finishedAt: submittedAt + 40,
    steps: [{ step: "ocr-rec", worker: "worker-0", queuedMs: 12, inferMs: 14, batchSize: 4 }],
    ...overrides,
  };
}

/** A failed result (no outputs, an error). */
export function makeFailedResult(overrides: Partial<InferenceResult> = {}): InferenceResult {
  const { outputs: _outputs, ...base } = makeResult();
  return {
    ...base,
    status: "failed",
    error: { code: "model_error", message: "the model raised: bad input" },
    outputTokens: 0,
    ...overrides,
  };
}
