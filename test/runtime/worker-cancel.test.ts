// The worker's side of DELETE /v1/requests/{id} on real RabbitMQ and Redis, with tiny ONNX models:
// a task whose tenant cancelled it is answered `cancelled` without running (charging nothing, or
// only what earlier steps of its route ran), its neighbours run as usual, another tenant's marker
// changes nothing, and a worker that cannot reach Redis runs tasks rather than stall. A lone task
// for an idle worker starts while its check is out (the first task of each case below): if it was
// cancelled, its outputs are dropped and it ends exactly as one that never ran.
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { routeFor, tenantKeys, type InferenceResult } from "../../runtime/shared/contracts/index.js";
import { chargedTokens } from "../../runtime/shared/db/index.js";
import { encodeTensor } from "../../runtime/shared/tensors.js";
import { startWorker, type Worker } from "../../runtime/worker/worker.js";
import { serviceUrls, uniqueName } from "../harness/services.js";
import * as fx from "./helpers/worker-fixtures.js";

const prefix = uniqueName("w-cancel");
const uris = fx.tinyModelUris();
const config = fx.runtimeConfig(prefix, {
  models: [
    {
      name: "add",
      uri: uris.add,
      tokens: { mode: "fixed", unitsPerRequest: 3 },
      batching: { maxBatchSize: 4 },
    },
    { name: "echo", uri: uris.echo },
  ],
  pipelines: [
    {
      name: "two-hop",
      steps: [
        { name: "first", model: "add" },
        { name: "second", model: "echo" },
      ],
    },
  ],
});
const x = encodeTensor({ name: "x", datatype: "FP32", shape: [1, 4], data: [[1, 2, 3, 4]] });

let broker: fx.BrokerClient;
let redis: Redis;
const workers: Worker[] = [];

const cancel = (tenant: string, id: string) =>
  redis.set(tenantKeys(prefix, tenant).cancel(id), "tenant", "EX", 600);
const byId = (results: InferenceResult[]) => new Map(results.map((r) => [r.requestId, r]));

beforeAll(async () => {
  broker = await fx.BrokerClient.connect(prefix);
  redis = new Redis(serviceUrls().redisUrl);
  for (const model of ["add", "echo"]) {
    workers.push(
      await startWorker({
        env: fx.workerEnv({ TURNPIKE_WORKER_ID: `w-${model}`, TURNPIKE_REDIS_URL: serviceUrls().redisUrl }),
        config,
        model,
      }),
    );
  }
  await Promise.all(workers.map((w) => w.ready));
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.close()));
  const keys = await redis.keys(`tp:{${prefix}/*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
  await broker?.cleanup(["add", "echo"]);
});

describe("cancelled tasks in the worker", () => {
  it("answers a cancelled task `cancelled` with no outputs and no charge, and runs the others", async () => {
    const route = routeFor(config, "add")!.route;
    const cancelled = fx.makeTask({ kind: "model", name: "add" }, route, [x], { inputTokens: 3 });
    const kept = fx.makeTask({ kind: "model", name: "add" }, route, [x], { inputTokens: 3 });
    // Another tenant's marker for the same id does not touch acme's task.
    const foreign = fx.makeTask({ kind: "model", name: "add" }, route, [x], { inputTokens: 3 });
    await cancel("acme", cancelled.requestId);
    await cancel("someone-else", foreign.requestId);
    for (const task of [cancelled, kept, foreign]) await broker.publishTask("add", task);

    const results = byId(await broker.results(3));
    const skipped = results.get(cancelled.requestId)!;
    expect(skipped).toMatchObject({
      status: "cancelled",
      error: { code: "cancelled" },
      inputTokens: 0,
      outputTokens: 0,
      steps: [],
    });
    expect(skipped.outputs).toBeUndefined();
    expect(chargedTokens(skipped)).toBe(0);
    expect(results.get(kept.requestId)).toMatchObject({ status: "succeeded", inputTokens: 3 });
    expect(results.get(foreign.requestId)).toMatchObject({ status: "succeeded" });
    expect(await broker.depth(`turnpike.${prefix}.model.add`)).toBe(0);
  });

  it("ends cancelled tasks that start in a busy model's batches before their checks answer", async () => {
    // Published at once, most are accepted while the model is busy: each starts in a batch while
    // its check is out, and its outcome waits for the check.
    const route = routeFor(config, "add")!.route;
    const tasks = Array.from({ length: 10 }, () =>
      fx.makeTask({ kind: "model", name: "add" }, route, [x], { inputTokens: 3 }),
    );
    const cancelledIds = new Set([tasks[1]!.requestId, tasks[4]!.requestId, tasks[8]!.requestId]);
    for (const id of cancelledIds) await cancel("acme", id);
    await Promise.all(tasks.map((task) => broker.publishTask("add", task)));

    const results = byId(await broker.results(tasks.length));
    for (const task of tasks) {
      const result = results.get(task.requestId)!;
      if (cancelledIds.has(task.requestId)) {
        expect(result).toMatchObject({ status: "cancelled", inputTokens: 0, outputTokens: 0, steps: [] });
        expect(result.outputs).toBeUndefined();
        expect(chargedTokens(result)).toBe(0);
      } else {
        expect(result).toMatchObject({ status: "succeeded", inputTokens: 3 });
      }
    }
    expect(await broker.depth(`turnpike.${prefix}.model.add`)).toBe(0);
  });

  it("charges only the steps a pipeline ran before the cancellation reached its next hop", async () => {
    const rest = routeFor(config, "two-hop")!.route.slice(1);
    const secondHop = fx.makeTask({ kind: "pipeline", name: "two-hop" }, rest, [x], {
      inputTokens: 5,
      outputTokens: 3,
      steps: [{ step: "first", worker: "w-add", queuedMs: 1, inferMs: 2, batchSize: 1 }],
    });
    await cancel("acme", secondHop.requestId);
    await broker.publishTask("echo", secondHop);
    const [result] = await broker.results(1);
    expect(result).toMatchObject({ status: "cancelled", inputTokens: 5, outputTokens: 3 });
    expect(result!.steps.map((s) => s.step)).toEqual(["first"]);
    expect(chargedTokens(result!)).toBe(8);
  });

  it("runs tasks when Redis cannot be asked (fails open instead of stalling)", async () => {
    const blind = await startWorker({
      env: fx.workerEnv({ TURNPIKE_WORKER_ID: "w-blind", TURNPIKE_REDIS_URL: "redis://127.0.0.1:9" }),
      config: { ...config, prefix: `${prefix}-blind` },
      model: "echo",
    });
    const blindBroker = await fx.BrokerClient.connect(`${prefix}-blind`);
    try {
      await blind.ready;
      const task = fx.makeTask({ kind: "model", name: "echo" }, routeFor(config, "echo")!.route, [x]);
      await blindBroker.publishTask("echo", task);
      const [result] = await blindBroker.results(1);
      expect(result).toMatchObject({ requestId: task.requestId, status: "succeeded" });
    } finally {
      await blind.close();
      await blindBroker.cleanup(["echo"]);
    }
  });
});
