// The worker serving the real PP-OCRv4 recognition model on real RabbitMQ: exact text, character
// token accounting, dynamic batching (with lines of different widths padded together), failed
// results for bad input, the sample OCR Pipeline, and (informational) throughput at batch 1 versus
// larger batches.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { load } from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { declareModelQueue, DEFAULT_QUEUE_POLICY } from "../../runtime/shared/amqp.js";
import type { PipelineSpec } from "../../operator/api/index.js";
import { orderedSteps } from "../../operator/shared/pipeline-steps.js";
import { names, type InferenceResult, pipelineGaps, routeFor } from "../../runtime/shared/contracts/index.js";
import { decodeTensor, encodeTensor, toJsonData } from "../../runtime/shared/tensors.js";
import { startWorker, type Worker } from "../../runtime/worker/worker.js";
import { repoRoot } from "../harness/kube.js";
import { uniqueName } from "../harness/services.js";
import * as fx from "./helpers/worker-fixtures.js";

const LINES = [
  "Turnpike 2026",
  "HELLO WORLD 42",
  "Invoice 12345",
  "Quota 1000 tokens",
  "Batch of six lines",
  "The quick brown fox jumps over the lazy dog 0123456789",
];

function textOf(result: InferenceResult): string[] {
  const text = result.outputs?.find((o) => o.name === "text");
  if (!text) throw new Error(`result ${result.requestId} has no text: ${JSON.stringify(result.error)}`);
  return toJsonData(decodeTensor(text)) as string[];
}

function ocrTask(...pngs: Buffer[]) {
  return fx.makeTask(
    { kind: "model", name: "ocr" },
    [{ step: "ocr", model: "ocr" }],
    [fx.imageInput(...pngs)],
  );
}

/**
 * samples/pipeline-ocr.yaml as the operator renders it (dependsOn made explicit), on this worker's
 * model (the sample's ocr-rec).
 */
function samplePipeline() {
  const sample = load(readFileSync(join(repoRoot, "samples/pipeline-ocr.yaml"), "utf8")) as {
    metadata: { name: string };
    spec: PipelineSpec;
  };
  const steps = orderedSteps(sample.spec.steps).map((s) =>
    s.model === "ocr-rec" ? { ...s, model: "ocr" } : s,
  );
  return { name: `sample-${sample.metadata.name}`, steps }; // this worker's model is named ocr
}

describe("worker with the PP-OCRv4 recognition model", () => {
  const prefix = uniqueName("w-ocr");
  let broker: fx.BrokerClient;
  let worker: Worker;

  beforeAll(async () => {
    const config = fx.runtimeConfig(prefix, {
      models: [
        {
          name: "ocr",
          uri: fx.OCR_URI,
          task: "ocr-recognition",
          batching: { maxBatchSize: 6, maxDelayMs: 50 },
          deliveryLimit: 2,
        },
      ],
      pipelines: [samplePipeline()],
    });
    worker = await startWorker({ env: fx.workerEnv(), config, model: "ocr" });
    await worker.ready;
    broker = await fx.BrokerClient.connect(prefix);
  });

  afterAll(async () => {
    await worker?.close();
    await broker?.cleanup(["ocr"]);
  });

  it("is live and ready after warm-up", async () => {
    expect((await fetch(`${worker.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${worker.url}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${worker.url}/metrics`)).text()).toMatch(
      /turnpike_model_load_seconds\{[^}]*model="ocr"/,
    );
  });

  it("recognizes a rendered line exactly and charges its characters as output tokens", async () => {
    const task = ocrTask(fx.renderLinePng("Turnpike 2026"));
    await broker.publishTask("ocr", task);
    const [result] = await broker.results(1);
    expect(result).toMatchObject({ requestId: task.requestId, tenant: "acme", status: "succeeded" });
    expect(textOf(result!)).toEqual(["Turnpike 2026"]);
    expect(result!.outputTokens).toBe("Turnpike 2026".length);
    const confidence = toJsonData(decodeTensor(result!.outputs!.find((o) => o.name === "confidence")!));
    expect(confidence[0]).toBeGreaterThan(0.8);
    expect(result!.steps).toEqual([expect.objectContaining({ step: "ocr", batchSize: 1 })]);
  });

  it("runs six tasks published at once in batches larger than one, long and short lines together", async () => {
    const tasks = LINES.map((line) => ocrTask(fx.renderLinePng(line)));
    await Promise.all(tasks.map((task) => broker.publishTask("ocr", task)));
    const results = await broker.results(tasks.length);
    const byId = new Map(results.map((r) => [r.requestId, r]));
    tasks.forEach((task, i) => {
      const result = byId.get(task.requestId)!;
      expect(result.status).toBe("succeeded");
      expect(textOf(result)).toEqual([LINES[i]]);
      expect(result.outputTokens).toBe(LINES[i]!.length);
    });
    const batchSizes = results.map((r) => r.steps[0]!.batchSize);
    expect(Math.max(...batchSizes)).toBeGreaterThan(1);
    const metrics = await (await fetch(`${worker.url}/metrics`)).text();
    const sum = Number(/turnpike_batch_size_sum\{[^}]*\} (\d+)/.exec(metrics)?.[1]);
    const count = Number(/turnpike_batch_size_count\{[^}]*\} (\d+)/.exec(metrics)?.[1]);
    expect(sum / count).toBeGreaterThan(1);
    expect(metrics).toMatch(/ml_tokens_processed_total\{[^}]*model="ocr",tenant="acme"[^}]*\} \d+/);
    // Acks follow the publish confirms, which may land just after the results reached us.
    await fx.eventually(async () =>
      /turnpike_in_flight_requests\{[^}]*target="ocr"[^}]*\} 0\n/.test(
        await (await fetch(`${worker.url}/metrics`)).text(),
      ),
    );
  });

  it("runs the sample Pipeline, a chain this runtime runs, and reads the line exactly", async () => {
    const config = fx.runtimeConfig(prefix, {
      models: [{ name: "ocr", uri: fx.OCR_URI }],
      pipelines: [samplePipeline()],
    });
    expect(pipelineGaps(config.pipelines[0]!).blocking).toEqual([]);
    const route = routeFor(config, "sample-ocr")!.route;
    expect(route.map((r) => r.step)).toEqual(["line", "recognize"]);
    const task = fx.makeTask({ kind: "pipeline", name: "sample-ocr" }, route, [
      fx.imageInput(fx.renderLinePng("Invoice 12345")),
    ]);
    await broker.publishTask("ocr", task);
    const [result] = await broker.results(1, 60_000);
    expect(textOf(result!)).toEqual(["Invoice 12345"]);
  });

  it("reads several lines of one request in order", async () => {
    const task = ocrTask(fx.renderLinePng("HELLO WORLD 42"), fx.renderLinePng("Invoice 12345"));
    await broker.publishTask("ocr", task);
    const [result] = await broker.results(1);
    expect(textOf(result!)).toEqual(["HELLO WORLD 42", "Invoice 12345"]);
    expect(result!.outputTokens).toBe(14 + 13);
  });

  it("publishes a failed result with a code for bad input, and keeps serving", async () => {
    const notPng = ocrTask();
    notPng.inputs = [
      encodeTensor({ name: "image", datatype: "BYTES", shape: [1], data: ["hello, not a png"] }),
    ];
    const wrongShape = ocrTask();
    wrongShape.inputs = [
      encodeTensor({ name: "x", datatype: "FP32", shape: [1, 3, 32, 8], data: new Float32Array(768) }),
    ];
    const wrongRoute = ocrTask(fx.renderLinePng("Quota"));
    wrongRoute.route = [{ step: "other", model: "other-model" }];
    const good = ocrTask(fx.renderLinePng("Quota 1000 tokens"));
    for (const task of [notPng, wrongShape, wrongRoute, good]) await broker.publishTask("ocr", task);
    const results = new Map((await broker.results(4)).map((r) => [r.requestId, r]));
    expect(results.get(notPng.requestId)).toMatchObject({
      status: "failed",
      outputTokens: 0,
      error: { code: "invalid_input", message: expect.stringMatching(/image 0 is not a PNG/) },
    });
    expect(results.get(wrongShape.requestId)?.error).toEqual({
      code: "invalid_input",
      message: expect.stringMatching(/expected shape \[-1, 3, 48, -1\], got \[1, 3, 32, 8\]/),
    });
    expect(results.get(wrongRoute.requestId)?.error?.code).toBe("route_error");
    expect(textOf(results.get(good.requestId)!)).toEqual(["Quota 1000 tokens"]);
    expect(await broker.depth(names(prefix).deadLetterQueue)).toBe(0);
  });

  it("reports throughput at batch 1 versus larger batches (information only)", async () => {
    const png = fx.renderLinePng("Turnpike 2026");
    const report: string[] = [];
    for (const maxBatchSize of [1, 4, 8]) {
      const config = fx.runtimeConfig(prefix, {
        models: [
          {
            name: "ocr-bench",
            uri: fx.OCR_URI,
            task: "ocr-recognition",
            batching: { maxBatchSize, maxDelayMs: 5 },
          },
        ],
      });
      // Queue everything first, so the measurement covers only the worker draining the queue.
      await declareModelQueue(broker.channel, prefix, "ocr-bench", {
        ...DEFAULT_QUEUE_POLICY,
        deliveryLimit: 3,
      });
      const count = 48;
      const tasks = Array.from({ length: count }, () =>
        fx.makeTask(
          { kind: "model", name: "ocr-bench" },
          [{ step: "ocr-bench", model: "ocr-bench" }],
          [fx.imageInput(png)],
        ),
      );
      await Promise.all(tasks.map((task) => broker.publishTask("ocr-bench", task)));
      const bench = await startWorker({ env: fx.workerEnv(), config, model: "ocr-bench" });
      try {
        await bench.ready;
        const started = performance.now();
        const results = await broker.results(count, 60_000);
        const seconds = (performance.now() - started) / 1000;
        expect(results.every((r) => r.status === "succeeded")).toBe(true);
        const mean = results.reduce((n, r) => n + r.steps[0]!.batchSize, 0) / count;
        report.push(
          `maxBatchSize ${maxBatchSize}: ${(count / seconds).toFixed(1)} req/s (mean batch ${mean.toFixed(1)})`,
        );
      } finally {
        await bench.close();
      }
    }
    console.log(
      `OCR through the worker (queue pre-filled), 48 requests of one 48x320 line, 2 threads:\n  ${report.join("\n  ")}`,
    );
    await broker.channel.deleteQueue(names(prefix).modelQueue("ocr-bench"));
  }, 180_000);
});
