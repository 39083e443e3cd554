// The collector end to end on the real RabbitMQ, PostgreSQL and Redis: results published as a worker
// publishes them become one record each, settle the real quota once, and announce completion;
// redeliveries change nothing; poison messages are dead-lettered without blocking the rest; a
// graceful close acknowledges what it was given.
import { afterEach, describe, expect, it } from "vitest";
import { startCollector, type Collector } from "../../runtime/collector/collector.js";
import { type InferenceResult, names } from "../../runtime/shared/contracts/index.js";
import { utcDay } from "../../runtime/shared/db/index.js";
import { makeFailedResult, makeResult } from "./helpers/collector-fixtures.js";
import { collectorWorld, waitFor, type CollectorWorld } from "./helpers/collector-harness.js";

let world: CollectorWorld | undefined;
let collector: Collector | undefined;

afterEach(async () => {
  await collector?.close();
  collector = undefined;
  await world?.cleanup();
  world = undefined;
});

/** Registers the tenants of `results` and reserves each result's tokens, as the gateway would. */
async function reserveAll(w: CollectorWorld, results: InferenceResult[]): Promise<void> {
  for (const tenant of new Set(results.map((r) => r.tenant))) {
    await w.quota.writeTenant(tenant, { tokensPerDay: 1_000_000, concurrentRequests: 10_000 }, []);
  }
  for (const r of results) {
    expect(await w.quota.reserve(r.tenant, r.requestId, r.reservedTokens)).toEqual({ ok: true });
  }
}

/** What a result charges under the collector's rule (see charged-tokens.ts). */
const charge = (r: InferenceResult) => (r.status === "succeeded" ? r.inputTokens + r.outputTokens : 0);

describe("collector", () => {
  it("records, settles and announces every result, in batches", async () => {
    world = await collectorWorld("coll-e2e");
    const w = world;
    const now = Date.now();
    const results = Array.from({ length: 60 }, (_, i) => {
      const base = { tenant: i % 2 ? "tenant-a" : "tenant-b", submittedAt: now, finishedAt: now + 5 };
      return i % 6 === 5
        ? makeFailedResult({ ...base, reservedTokens: 50, inputTokens: 3 })
        : makeResult({ ...base, reservedTokens: 50, inputTokens: 2, outputTokens: i % 9 });
    });
    await reserveAll(w, results);

    collector = await startCollector({ env: w.env({ TURNPIKE_COLLECTOR_BATCH: "16" }) });
    expect((await fetch(`${collector.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${collector.url}/readyz`)).status).toBe(200);

    await Promise.all(results.map((r) => w.publish(r)));
    await waitFor("a notice per result", () => w.notices.length >= results.length);

    expect(w.notices.map((x) => x.requestId).sort()).toEqual(results.map((r) => r.requestId).sort());
    for (const r of results) {
      expect(w.noticesFor(r.requestId)).toEqual([
        { requestId: r.requestId, tenant: r.tenant, status: r.status },
      ]);
      const record = await w.records.get(r.requestId);
      expect(record).toMatchObject({ status: r.status, tenant: r.tenant, inputTokens: r.inputTokens });
      // The notice goes out only after the commit: by now the record must be readable.
    }
    expect(await w.rowCount()).toBe(results.length);

    for (const tenant of ["tenant-a", "tenant-b"]) {
      const mine = results.filter((r) => r.tenant === tenant);
      const tokens = mine.reduce((sum, r) => sum + charge(r), 0);
      expect(await w.records.usage(tenant, utcDay(now))).toEqual({ tokens, requests: mine.length });
      // The real quota: every reservation settled to the charged amount, nothing left in flight.
      const quota = await w.quota.usage(tenant);
      expect(quota.tokensToday).toBe(tokens);
      expect(quota.inFlight).toBe(0);
    }
    expect(await w.quota.settle(results[0]!.tenant, results[0]!.requestId, 1)).toBe("already");

    const metrics = await (await fetch(`${collector.url}/metrics`)).text();
    expect(metrics).toMatch(/turnpike_results_recorded_total\{status="succeeded",role="collector"\} 50/);
    expect(metrics).toMatch(/turnpike_results_recorded_total\{status="failed",role="collector"\} 10/);
    const tokensA = results.filter((r) => r.tenant === "tenant-a").reduce((s, r) => s + charge(r), 0);
    expect(metrics).toContain(
      `ml_tokens_processed_total{model="ocr-rec",tenant="tenant-a",role="collector"} ${tokensA}`,
    );
  });

  it("keeps one record and one charge when the same result is delivered twice", async () => {
    world = await collectorWorld("coll-redeliver");
    const w = world;
    const result = makeResult({
      tenant: "dup",
      submittedAt: Date.now(),
      reservedTokens: 100,
      outputTokens: 20,
    });
    await reserveAll(w, [result]);
    collector = await startCollector({ env: w.env() });

    await w.publish(result);
    await w.publish({ ...result, outputTokens: 70 }); // a re-run with other numbers, same message id
    await waitFor("both deliveries handled", () => w.noticesFor(result.requestId).length >= 2);

    expect(await w.rowCount()).toBe(1);
    expect((await w.records.get(result.requestId))?.outputTokens).toBe(20);
    expect(await w.records.usage("dup", utcDay(result.submittedAt))).toEqual({ tokens: 21, requests: 1 });
    expect((await w.quota.usage("dup")).tokensToday).toBe(21);
    const metrics = await (await fetch(`${collector.url}/metrics`)).text();
    expect(metrics).toMatch(/turnpike_results_recorded_total\{status="succeeded",role="collector"\} 1\n/);
  });

  it("dead-letters unparseable messages and keeps recording the others", async () => {
    world = await collectorWorld("coll-poison");
    const w = world;
    collector = await startCollector({ env: w.env() });
    const good = makeResult({ tenant: "ok", submittedAt: Date.now() });

    await w.publish(Buffer.from("{ not json"), "poison-1");
    await w.publish({ ...makeResult(), requestId: "not-a-uuid" } as InferenceResult, "poison-2");
    await w.publish(good);
    await waitFor("the good result", () => w.noticesFor(good.requestId).length > 0);
    expect(await w.rowCount()).toBe(1);

    const dlq = names(w.prefix).deadLetterQueue;
    const reasons = new Map<string, string>();
    await waitFor("two dead letters", async () => {
      const msg = await w.channel.get(dlq, { noAck: true });
      if (msg)
        reasons.set(String(msg.properties.messageId), String(msg.properties.headers?.["x-turnpike-reason"]));
      return reasons.size === 2;
    });
    expect(reasons.get("poison-1")).toMatch(/not JSON/);
    expect(reasons.get("poison-2")).toMatch(/requestId: must be a UUID/);
    // Nothing waits in the results queue: the poison was acknowledged after dead-lettering.
    await waitFor(
      "empty results queue",
      async () => (await w.channel.checkQueue(names(w.prefix).resultsQueue)).messageCount === 0,
    );
  });

  it("flushes and acknowledges a partly filled batch on graceful close", async () => {
    world = await collectorWorld("coll-close");
    const w = world;
    // A batch that never fills and a flush delay longer than the test: only close() can flush it.
    collector = await startCollector({
      env: w.env({ TURNPIKE_COLLECTOR_BATCH: "1000", TURNPIKE_COLLECTOR_FLUSH_MS: "60000" }),
    });
    const results = Array.from({ length: 10 }, () =>
      makeResult({ tenant: "closing", submittedAt: Date.now() }),
    );
    await Promise.all(results.map((r) => w.publish(r)));
    const queue = names(w.prefix).resultsQueue;
    await waitFor(
      "all delivered to the collector",
      async () => (await w.channel.checkQueue(queue)).messageCount === 0,
    );
    expect(await w.rowCount()).toBe(0);

    await collector.close();
    collector = undefined;
    expect(await w.rowCount()).toBe(10);
    expect(w.notices).toHaveLength(10);
    // Acknowledged, not requeued: the queue stays empty with no consumer attached.
    await new Promise((r) => setTimeout(r, 200));
    const after = await w.channel.checkQueue(queue);
    expect(after).toMatchObject({ messageCount: 0, consumerCount: 0 });
  });

  it("refuses bad settings with a message naming the variable", async () => {
    await expect(
      startCollector({
        env: { TURNPIKE_COLLECTOR_BATCH: "0" },
        config: { prefix: "x", models: [], pipelines: [], tenants: [] },
      }),
    ).rejects.toThrow(/TURNPIKE_COLLECTOR_BATCH/);
  });
});
