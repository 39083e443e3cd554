/**
 * Fair sharing of one model between tenants, on the real gateway, worker, collector, RabbitMQ,
 * Redis and PostgreSQL, with a model whose batches take a while (test/fixtures/slow-model.ts).
 * Every assertion counts or orders what the worker received, accepted and started (its hooks); none
 * is timed.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { names, tenantKeys, type InferenceTask } from "../../runtime/shared/contracts/index.js";
import { startWorker, type Worker } from "../../runtime/worker/worker.js";
import { slowBody, SLOW_WIDTH, writeSlowModel } from "../fixtures/slow-model.js";
import { deleteLanes } from "./helpers/broker-admin.js";
import { call, errorOf, gatewayFixture, type GatewayFixture } from "./helpers/gateway-fixture.js";
import { eventually, workerEnv } from "./helpers/worker-fixtures.js";

const BATCH = 4;
const tenants = ["flood", "trickle", "high", "low", "bounded", "other"] as const;
const key = (tenant: string) => `${tenant}-key-0123456789`;
const asyncHeaders = { prefer: "respond-async" };

let fx: GatewayFixture;
let worker: Worker | undefined;
/** Every task the worker accepted for running, in order. */
const accepted: InferenceTask[] = [];
let onAccept: ((task: InferenceTask) => void) | undefined;
/** What the worker received and the batches it started, in order. */
const events: ({ received: string } | { batch: InferenceTask[] })[] = [];

beforeAll(async () => {
  // About 50 ms per batch of 4 on these machines (12,000 layers: 49 ms; 2,000 layers took 8 ms on an
  // AVX-512 Xeon): far longer than a request's trip to the worker, also with both cores busy.
  const uri = writeSlowModel(mkdtempSync(join(tmpdir(), "turnpike-slow-")), 12_000);
  const tensor = { name: "x", datatype: "FP32" as const, shape: [-1, SLOW_WIDTH] };
  const slow = {
    uri,
    inputs: [{ ...tensor }],
    outputs: [{ ...tensor, name: "y" }],
    tokens: { mode: "fixed" as const, maxOutputTokens: 1, unitsPerRequest: 1 },
    batching: { maxBatchSize: BATCH, maxDelayMs: 0 },
    threads: 1,
  };
  fx = await gatewayFixture({
    config: {
      models: [
        { name: "slow", ...slow },
        { name: "parked", ...slow, queue: { maxLength: 5 } },
      ],
      tenants: [
        { name: "flood" },
        { name: "trickle" },
        { name: "high", priority: 9 },
        { name: "low", priority: 1 },
        { name: "bounded", maxQueuedPerModel: 3 },
        { name: "other" },
      ],
    },
    tenants: tenants.map((name) => ({ name, apiKey: key(name) })),
    queues: { slow: {}, parked: { maxLength: 5 } },
    collector: true,
  });
}, 240_000);

afterAll(async () => {
  await worker?.close();
  await fx?.close();
  if (fx) await deleteLanes(fx.prefix);
});

/** Starts a worker of "slow", recording what it accepts. */
async function startSlowWorker(): Promise<void> {
  worker = await startWorker({
    env: workerEnv({ TURNPIKE_PREFETCH: String(2 * BATCH) }),
    config: fx.config,
    model: "slow",
    onReceived: (task) => void events.push({ received: task.requestId }),
    onBatchStarted: (tasks) => void events.push({ batch: tasks }),
    onAccepted: (task) => {
      accepted.push(task);
      onAccept?.(task);
    },
  });
  await worker.ready;
}

/** Submits one asynchronous request; returns its id. */
async function submit(tenant: string, model = "slow"): Promise<string> {
  const res = await call(fx.url, `/v2/models/${model}/infer`, {
    key: key(tenant),
    body: slowBody(),
    headers: asyncHeaders,
  });
  expect(res.status, await res.clone().text()).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

/** Records of `ids` that reached PostgreSQL as succeeded. */
async function succeeded(ids: string[]): Promise<number> {
  const { rows } = await fx.pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM "${fx.schema}".requests WHERE id = ANY($1::uuid[]) AND status = 'succeeded'`,
    [ids],
  );
  return Number(rows[0]!.n);
}

describe("fair sharing of a backlogged model", () => {
  it("gives two tenants equal shares while both wait, though one submitted 10x as much", async () => {
    // Both keep the model backlogged: 10 flood requests for every trickle one, all queued first.
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      for (let j = 0; j < 10; j++) ids.push(await submit("flood"));
      ids.push(await submit("trickle"));
    }
    expect(await fx.depth("slow")).toBe(220);
    const from = accepted.length;
    await startSlowWorker();
    await eventually(() => accepted.length - from >= 220, 120_000);
    const order = accepted.slice(from).map((t) => t.tenant);
    // The window in which both had work waiting: the first 40 starts hold all 20 trickle ones
    // (within 10% of its fair half), though it sent a tenth of the requests.
    const window = order.slice(0, 40);
    const trickle = window.filter((t) => t === "trickle").length;
    expect(trickle).toBeGreaterThanOrEqual(18);
    expect(trickle).toBeLessThanOrEqual(22);
    // Nothing lost, nothing run twice: every request recorded once as succeeded.
    expect(new Set(accepted.slice(from).map((t) => t.requestId)).size).toBe(220);
    await eventually(async () => (await succeeded(ids)) === 220, 60_000);
    await worker!.close();
    worker = undefined;
  }, 240_000);

  it("starts a high tenant's request within one batch while a low tenant floods", async () => {
    // The low tenant floods: its requests are queued before the worker starts, so the high requests'
    // trip to the worker is not stuck behind the flood's HTTP requests at the gateway.
    const LOWS = 100;
    for (let i = 0; i < LOWS; i++) await submit("low");
    // While the flood runs, submit a high request three times; remember how many requests the
    // worker had accepted when each was sent.
    const marks = new Map<string, number>();
    const highs: Promise<void>[] = [];
    const from = accepted.length;
    const triggers = new Set([from + 4, from + 20, from + 40]);
    onAccept = () => {
      if (!triggers.delete(accepted.length)) return;
      const mark = accepted.length;
      highs.push(submit("high").then((id) => void marks.set(id, mark)));
    };
    await startSlowWorker();
    const started = (id: string) => accepted.some((t) => t.requestId === id);
    const ran = (id: string) => events.some((e) => "batch" in e && e.batch.some((t) => t.requestId === id));
    await eventually(
      () => marks.size === 3 && [...marks.keys()].every((id) => started(id) && ran(id)),
      120_000,
    );
    onAccept = undefined;
    await Promise.all(highs);
    for (const [id, mark] of marks) {
      const at = accepted.findIndex((t) => t.requestId === id);
      const lowsBetween = accepted.slice(mark, at).filter((t) => t.tenant === "low").length;
      expect(lowsBetween, `low requests started while high ${id} waited`).toBeLessThanOrEqual(BATCH);
      // Accepted ahead of the lows already waiting for the next batch, and run in that batch: the
      // first batch the model started after the request arrived holds it.
      const arrived = events.findIndex((e) => "received" in e && e.received === id);
      const next = events.slice(arrived).find((e) => "batch" in e);
      expect(next && "batch" in next && next.batch.map((t) => t.requestId)).toContain(id);
    }
    await eventually(() => accepted.filter((t) => t.tenant === "low").length === LOWS, 120_000);
    // The lows it overtook ran in the batch after: the lows still ran in the order they were accepted.
    const lowRuns = () =>
      events.flatMap((e) => ("batch" in e ? e.batch : [])).filter((t) => t.tenant === "low");
    await eventually(() => lowRuns().length === LOWS, 120_000);
    const acceptedLows = accepted.filter((t) => t.tenant === "low");
    expect(lowRuns().map((t) => t.requestId)).toEqual(acceptedLows.map((t) => t.requestId));
  }, 240_000);
});

describe("per-tenant back-pressure", () => {
  it("refuses a tenant over its own backlog with 429 tenant_backlog_full, and not the others", async () => {
    // "parked" has no worker: requests stay queued. Its lanes hold 5 each (spec.queue.maxLength).
    for (let i = 0; i < 3; i++) await submit("bounded", "parked");
    const over = await call(fx.url, "/v2/models/parked/infer", {
      key: key("bounded"),
      body: slowBody(),
      headers: asyncHeaders,
    });
    expect(over.status).toBe(429);
    const error = await errorOf(over);
    expect(error.code).toBe("tenant_backlog_full");
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThan(0);
    // The refusal released its reservation: only the 3 accepted are in flight.
    expect((await fx.quota.usage("bounded")).inFlight).toBe(3);
    // Another tenant is not refused by it, up to its own lane's maxLength: then 503 queue_full
    // (quorum queues refuse once they are at or just over the limit).
    let others = 0;
    let full: Response | undefined;
    for (let i = 0; i < 10 && !full; i++) {
      const res = await call(fx.url, "/v2/models/parked/infer", {
        key: key("other"),
        body: slowBody(),
        headers: asyncHeaders,
      });
      if (res.status === 202) others++;
      else full = res;
    }
    expect(others).toBeGreaterThanOrEqual(5);
    expect(full?.status).toBe(503);
    expect((await errorOf(full!)).code).toBe("queue_full");
    expect(await fx.depth("parked")).toBe(3 + others);
    // Once its requests finish (the collector records them), the tenant may submit again.
    const served = await fx.serve("parked");
    const backlog = tenantKeys(fx.prefix, "bounded").backlog("parked");
    await eventually(async () => (await fx.redis.zcard(backlog)) === 0, 30_000);
    await submit("bounded", "parked");
    await eventually(() => served.tasks.length === 4 + others, 30_000);
    await served.stop();
    expect(names(fx.prefix).modelLane("parked", "bounded")).toMatch(/\.tenant\.bounded$/);
  }, 120_000);
});
