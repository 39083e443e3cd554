// The result cache (InferenceModel spec.cache) on an ONNX model end to end, on real Redis, RabbitMQ
// and PostgreSQL with a real worker running a tiny generated model: a miss runs the model and the
// collector stores the answer; a hit is answered by the gateway without the model's queue (no
// worker step in the record), recorded with cached = true and charged as the spec says; scope,
// the size bound, a new generation and the hit/miss metrics.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cacheKeys, type ModelCache } from "../../runtime/shared/contracts/index.js";
import { startWorker, type Worker } from "../../runtime/worker/worker.js";
import {
  call,
  gatewayFixture,
  KEYS,
  standardTenants,
  type GatewayFixture,
} from "./helpers/gateway-fixture.js";
import { modelCounter, requestRow } from "./helpers/cache-fixtures.js";
import { tinyModelUris, workerEnv } from "./helpers/worker-fixtures.js";

const uris = tinyModelUris();
const cached = (extra: Partial<ModelCache> = {}) => ({ generation: "g1", ttlSeconds: 600, ...extra });
const add = (name: string, cache?: Partial<ModelCache> & { generation: string }) => ({
  name,
  uri: uris.add,
  tokens: { mode: "fixed" as const, unitsPerRequest: 3, maxOutputTokens: 5 },
  batching: { maxBatchSize: 1, maxDelayMs: 0 },
  ...(cache ? { cache } : {}),
});
const MODELS = {
  free: add("add", cached()),
  charged: add("add-charged", cached({ charge: "tokens" })),
  shared: add("add-shared", cached({ scope: "model" })),
  small: add("add-small", cached({ maxEntries: 2 })),
  tiny: add("add-tiny", cached({ maxEntryBytes: 10 })),
  off: add("add-off"),
};

let fx: GatewayFixture;
const workers: Worker[] = [];

beforeAll(async () => {
  const models = Object.values(MODELS);
  fx = await gatewayFixture({
    config: { models, tenants: [{ name: "acme" }, { name: "limited" }, { name: "other" }] },
    tenants: standardTenants(),
    queues: Object.fromEntries(models.map((m) => [m.name, {}])),
    collector: true,
  });
  for (const m of models) {
    const worker = await startWorker({ env: workerEnv(), config: fx.config, model: m.name });
    await worker.ready;
    workers.push(worker);
  }
}, 120_000);

afterAll(async () => {
  for (const w of workers) await w.close();
  await fx?.close();
}, 60_000);

interface Infer {
  status: number;
  id: string;
  body: { outputs?: { name: string; data: number[] }[]; id?: string };
}

async function infer(model: string, x: number[], key = KEYS.acme, headers: Record<string, string> = {}) {
  const res = await call(fx.url, `/v2/models/${model}/infer`, {
    key,
    headers,
    body: { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: x }] },
  });
  return { status: res.status, id: res.headers.get("x-request-id")!, body: await res.json() } as Infer;
}

const row = (id: string) => requestRow(fx, id);
const metric = (name: string, model: string) => modelCounter(fx, name, model);

describe("result cache on an ONNX model", () => {
  it("answers a repeated request from the cache: same outputs, no worker step, cached record, charged nothing", async () => {
    const miss = await infer("add", [1, 2, 3, 4]);
    expect(miss.status).toBe(200);
    expect(miss.body.outputs![0]!.data).toEqual([2, 4, 6, 8]);
    const missRow = await row(miss.id);
    expect(missRow).toMatchObject({ cached: false, charged_tokens: "3", status: "succeeded" });
    expect(missRow.steps.length).toBe(1);

    const hit = await infer("add", [1, 2, 3, 4]);
    expect(hit.status).toBe(200);
    expect(hit.id).not.toBe(miss.id);
    expect(hit.body.outputs).toEqual(miss.body.outputs);
    const hitRow = await row(hit.id);
    expect(hitRow).toMatchObject({ cached: true, charged_tokens: "0", status: "succeeded", steps: [] });

    const view = await (await call(fx.url, `/v1/requests/${hit.id}`, { key: KEYS.acme })).json();
    expect(view).toMatchObject({ status: "succeeded", cached: true, tokens: { charged: 0 } });
    // Still a request in the tenant's usage, at no token cost.
    const usage = await fx.pool.query(
      `SELECT requests::int, tokens::int FROM "${fx.schema}".tenant_usage WHERE tenant = 'acme'`,
    );
    expect(usage.rows[0]).toMatchObject({ requests: 2, tokens: 3 });

    const other = await infer("add", [1, 2, 3, 5]);
    expect((await row(other.id)).cached).toBe(false);
    expect(await metric("turnpike_cache_hits_total", "add")).toBe(1);
    expect(await metric("turnpike_cache_misses_total", "add")).toBe(2);
  });

  it("answers Prefer: respond-async with 202, then GET /v1/requests/{id} holds the cached result", async () => {
    await infer("add", [5, 5, 5, 5]);
    const res = await infer("add", [5, 5, 5, 5], KEYS.acme, { prefer: "respond-async" });
    expect(res.status).toBe(202);
    expect((await row(res.id)).cached).toBe(true);
    const view = (await (await call(fx.url, `/v1/requests/${res.id}`, { key: KEYS.acme })).json()) as {
      cached?: boolean;
      result: { outputs: { data: number[] }[] };
    };
    expect(view.cached).toBe(true);
    expect(view.result.outputs[0]!.data).toEqual([6, 7, 8, 9]);
  });

  it("charges a hit the original answer's tokens when charge is tokens", async () => {
    const miss = await infer("add-charged", [0, 0, 0, 1]);
    const hit = await infer("add-charged", [0, 0, 0, 1]);
    expect(await row(miss.id)).toMatchObject({ cached: false, charged_tokens: "3" });
    expect(await row(hit.id)).toMatchObject({ cached: true, charged_tokens: "3" });
  });

  it("keeps entries per tenant by default and shares them across tenants with scope model", async () => {
    await infer("add", [7, 7, 7, 7], KEYS.acme);
    const otherTenant = await infer("add", [7, 7, 7, 7], KEYS.other);
    expect((await row(otherTenant.id)).cached).toBe(false);

    await infer("add-shared", [7, 7, 7, 7], KEYS.acme);
    const shared = await infer("add-shared", [7, 7, 7, 7], KEYS.other);
    expect((await row(shared.id)).cached).toBe(true);
  });

  it("holds at most maxEntries per model, evicting the oldest, and skips answers over maxEntryBytes", async () => {
    for (const v of [1, 2, 3]) await infer("add-small", [v, 0, 0, 0]);
    expect(await fx.redis.zcard(cacheKeys(fx.prefix, "add-small").index)).toBe(2);
    const oldest = await infer("add-small", [1, 0, 0, 0]);
    expect((await row(oldest.id)).cached).toBe(false);
    const newest = await infer("add-small", [3, 0, 0, 0]);
    expect((await row(newest.id)).cached).toBe(true);

    await infer("add-tiny", [1, 1, 1, 1]);
    const again = await infer("add-tiny", [1, 1, 1, 1]);
    expect((await row(again.id)).cached).toBe(false);
    expect(await fx.redis.exists(cacheKeys(fx.prefix, "add-tiny").index)).toBe(0);
  });

  it("never caches a model without spec.cache", async () => {
    await infer("add-off", [1, 2, 3, 4]);
    const again = await infer("add-off", [1, 2, 3, 4]);
    expect((await row(again.id)).cached).toBe(false);
    expect(await metric("turnpike_cache_misses_total", "add-off")).toBe(0);
  });

  it("measures a hit's and a miss's round trip (informational)", async () => {
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const timed = async (x: number[]) => {
      const started = performance.now();
      expect((await infer("add-off", x)).status).toBe(200);
      return performance.now() - started;
    };
    const timedHit = async (x: number[]) => {
      const started = performance.now();
      expect((await infer("add", x)).status).toBe(200);
      return performance.now() - started;
    };
    const misses: number[] = [];
    const hits: number[] = [];
    await infer("add", [4, 3, 2, 1]);
    for (let i = 0; i < 20; i++) {
      misses.push(await timed([i, 0, 0, 100]));
      hits.push(await timedHit([4, 3, 2, 1]));
    }
    console.log(
      `[result-cache] median round trip over 20: miss (queue, worker, collector) ${median(misses).toFixed(1)} ms, ` +
        `hit ${median(hits).toFixed(1)} ms`,
    );
  });

  it("misses after the model's generation changes (the old entries are unreachable)", async () => {
    const before = await infer("add", [9, 9, 9, 9]);
    expect((await row((await infer("add", [9, 9, 9, 9])).id)).cached).toBe(true);
    // What a reload of the runtime config does when the operator renders a new generation.
    fx.config.models.find((m) => m.name === "add")!.cache!.generation = "g2";
    const after = await infer("add", [9, 9, 9, 9]);
    expect(after.body.outputs).toEqual(before.body.outputs);
    expect((await row(after.id)).cached).toBe(false);
    expect((await row((await infer("add", [9, 9, 9, 9])).id)).cached).toBe(true);
  });
});
