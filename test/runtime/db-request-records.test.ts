// RequestRecords against the real PostgreSQL: idempotent batch upserts, usage counted once per
// request, failed results charged nothing, 500 results in one call, and rows/s at batch 1 vs 100.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RequestRecords, utcDay } from "../../runtime/shared/db/index.js";
import { toRequestRows, upsertResultsSql } from "../../runtime/shared/db/request-sql.js";
import {
  makeFailedResult,
  makeResult,
  migratedSchema,
  type TestSchema,
} from "./helpers/collector-fixtures.js";

let db: TestSchema;
let records: RequestRecords;

beforeAll(async () => {
  db = await migratedSchema("db_records");
  records = new RequestRecords(db.pool, db.schema);
});

afterAll(async () => {
  await db?.drop();
});

describe("RequestRecords", () => {
  it("records a result-cache hit as cached, charged as its flag says, and counts it as a request", async () => {
    const tenant = "cache-hits";
    const free = {
      ...makeResult({ tenant, inputTokens: 3, outputTokens: 7 }),
      cached: { charge: "none" as const },
    };
    const paid = {
      ...makeResult({ tenant, inputTokens: 3, outputTokens: 7 }),
      cached: { charge: "tokens" as const },
    };
    const outcome = await records.upsertResults([free, paid]);
    expect(outcome.stored.get(free.requestId)?.chargedTokens).toBe(0);
    expect(outcome.stored.get(paid.requestId)?.chargedTokens).toBe(10);
    expect(await records.get(free.requestId)).toMatchObject({
      cached: true,
      chargedTokens: 0,
      outputTokens: 7,
    });
    expect(await records.get(paid.requestId)).toMatchObject({ cached: true, chargedTokens: 10 });
    expect(await records.usage(tenant, utcDay(free.submittedAt))).toEqual({ tokens: 10, requests: 2 });
  });

  it("keeps one row and counts usage once when the same result is upserted twice", async () => {
    const tenant = "twice";
    const result = makeResult({ tenant, inputTokens: 3, outputTokens: 7 });

    const first = await records.upsertResults([result]);
    expect(first.inserted).toEqual([result.requestId]);
    expect(first.stored.get(result.requestId)).toEqual({
      inserted: true,
      status: "succeeded",
      chargedTokens: 10,
    });

    // A redelivery carrying different numbers must not change the record or the usage.
    const second = await records.upsertResults([{ ...result, outputTokens: 99 }]);
    expect(second.inserted).toEqual([]);
    expect(second.stored.get(result.requestId)).toEqual({
      inserted: false,
      status: "succeeded",
      chargedTokens: 10,
    });

    const rows = await db.pool.query(
      `SELECT count(*)::int AS n FROM "${db.schema}".requests WHERE tenant = $1`,
      [tenant],
    );
    expect(rows.rows[0].n).toBe(1);
    expect(await records.usage(tenant, utcDay(result.submittedAt))).toEqual({ tokens: 10, requests: 1 });

    const record = await records.get(result.requestId);
    expect(record).toEqual({
      id: result.requestId,
      tenant,
      target: "ocr-rec",
      targetKind: "model",
      status: "succeeded",
      outputs: result.outputs,
      error: null,
      reservedTokens: 300,
      inputTokens: 3,
      outputTokens: 7,
      chargedTokens: 10,
      cached: false,
      submittedAt: new Date(result.submittedAt),
      finishedAt: new Date(result.finishedAt),
    });
  });

  it("counts duplicates inside one batch once and charges failed results nothing", async () => {
    const tenant = "mixed";
    const ok = makeResult({ tenant, inputTokens: 2, outputTokens: 4 });
    const failed = makeFailedResult({ tenant, inputTokens: 5 });
    const outcome = await records.upsertResults([ok, failed, ok, { ...failed }]);
    expect(outcome.inserted).toEqual([ok.requestId, failed.requestId].sort());
    expect(await records.usage(tenant, utcDay(ok.submittedAt))).toEqual({ tokens: 6, requests: 2 });

    const record = await records.get(failed.requestId);
    expect(record?.status).toBe("failed");
    expect(record?.outputs).toBeNull();
    expect(record?.error).toEqual(failed.error);
    expect(record?.chargedTokens).toBe(0);
  });

  it("books usage on the UTC day of submission", async () => {
    const tenant = "midnight";
    const submittedAt = Date.UTC(2026, 2, 1, 23, 59, 59, 500);
    const result = makeResult({ tenant, submittedAt, finishedAt: submittedAt + 1000 });
    await records.upsertResults([result]);
    expect(await records.usage(tenant, "2026-03-01")).toEqual({ tokens: 6, requests: 1 });
    expect(await records.usage(tenant, "2026-03-02")).toBeUndefined();
  });

  it("answers undefined for unknown or malformed ids and rejects malformed days", async () => {
    expect(await records.get("00000000-0000-0000-0000-000000000000")).toBeUndefined();
    expect(await records.get("not-a-uuid")).toBeUndefined();
    expect(await records.usage("nobody", "2026-01-01")).toBeUndefined();
    await expect(records.usage("acme", "yesterday")).rejects.toThrow(/YYYY-MM-DD/);
  });

  it("writes a batch of 500 results in one call", async () => {
    const tenant = "bulk";
    const batch = Array.from({ length: 500 }, (_, i) =>
      i % 10 === 9
        ? makeFailedResult({ tenant })
        : makeResult({ tenant, inputTokens: 1, outputTokens: i % 7 }),
    );
    const outcome = await records.upsertResults(batch);
    expect(outcome.inserted).toHaveLength(500);
    const expectedTokens = batch.reduce(
      (sum, r) => sum + (r.status === "succeeded" ? 1 + r.outputTokens : 0),
      0,
    );
    expect(await records.usage(tenant, utcDay(batch[0]!.submittedAt))).toEqual({
      tokens: expectedTokens,
      requests: 500,
    });

    // The whole batch again, e.g. after a crash before the ack: nothing changes.
    const again = await records.upsertResults(batch);
    expect(again.inserted).toEqual([]);
    expect(again.stored.size).toBe(500);
    expect(await records.usage(tenant, utcDay(batch[0]!.submittedAt))).toEqual({
      tokens: expectedTokens,
      requests: 500,
    });
  });

  it("survives concurrent upserts of overlapping batches with exactly one count per request", async () => {
    const tenant = "race";
    const batch = Array.from({ length: 100 }, () => makeResult({ tenant, inputTokens: 1, outputTokens: 1 }));
    const reversed = [...batch].reverse();
    const outcomes = await Promise.all([
      records.upsertResults(batch),
      records.upsertResults(reversed),
      records.upsertResults(batch.slice(0, 50)),
    ]);
    const insertedIds = outcomes.flatMap((o) => o.inserted);
    expect(new Set(insertedIds).size).toBe(100);
    expect(insertedIds).toHaveLength(100);
    expect(await records.usage(tenant, utcDay(batch[0]!.submittedAt))).toEqual({
      tokens: 200,
      requests: 100,
    });
  });

  it("builds one statement whose rows are deduplicated and sorted by id", () => {
    const a = makeResult({ requestId: "BBBBBBBB-0000-4000-8000-000000000000" });
    const b = makeResult({ requestId: "aaaaaaaa-0000-4000-8000-000000000000" });
    const rows = toRequestRows([a, b, a]);
    expect(rows.map((r) => r.id)).toEqual([
      "aaaaaaaa-0000-4000-8000-000000000000",
      "bbbbbbbb-0000-4000-8000-000000000000",
    ]);
    expect(rows[0]).toMatchObject({ charged_tokens: 6, queue_ms: 12, infer_ms: 14, target_kind: "model" });
    const sql = upsertResultsSql("some_schema");
    expect(sql.match(/;/g)).toBeNull();
    expect(sql).toContain('INSERT INTO "some_schema".requests');
    expect(sql).toContain("ON CONFLICT (id) DO NOTHING");
  });

  it("measures rows/s at batch 1 vs batch 100 (informational)", async () => {
    const tenant = "bench";
    const total = 1000;
    const rate = async (batchSize: number): Promise<number> => {
      const all = Array.from({ length: total }, () => makeResult({ tenant }));
      const started = performance.now();
      for (let i = 0; i < total; i += batchSize) await records.upsertResults(all.slice(i, i + batchSize));
      return total / ((performance.now() - started) / 1000);
    };
    const one = await rate(1);
    const hundred = await rate(100);
    console.log(
      `[measure] upsertResults, ${total} rows sequential: batch 1 = ${Math.round(one)} rows/s, ` +
        `batch 100 = ${Math.round(hundred)} rows/s (x${(hundred / one).toFixed(1)})`,
    );
    expect(await records.usage(tenant, utcDay(Date.UTC(2026, 0, 15)))).toEqual({
      tokens: 2 * total * 6,
      requests: 2 * total,
    });
  });
});
