// spec.runtime.executionProvider reaching onnxruntime: the providers asked for, per spec, and on this
// machine (no GPU, no CUDA build of onnxruntime-node) a worker asked for CUDA that really tries it,
// falls back to the CPU, still reads the line exactly, and reports the fallback where the operator
// reads it (its consumer arguments in the RabbitMQ management API) and in its metrics.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inspectQueue } from "../../operator/inference-model/queue.js";
import {
  FALLBACK_REASON_ARGUMENT,
  names,
  providerFallbacks,
  REQUESTED_PROVIDER_ARGUMENT,
  USED_PROVIDER_ARGUMENT,
} from "../../runtime/shared/contracts/index.js";
import { decodeTensor, toJsonData } from "../../runtime/shared/tensors.js";
import {
  cudaDeviceId,
  cudaProviderLibrary,
  providersFor,
} from "../../runtime/worker/engines/onnx/execution-provider.js";
import { startWorker, type Worker } from "../../runtime/worker/worker.js";
import { rabbitManagementUrl, uniqueName } from "../harness/services.js";
import * as fx from "./helpers/worker-fixtures.js";

describe("the execution providers asked for", () => {
  it("follow the spec, with the pod's CUDA device", () => {
    expect(providersFor("cpu", 0)).toEqual(["cpu"]);
    expect(providersFor("cuda", 0)).toEqual([{ name: "cuda", deviceId: 0 }]);
    expect(providersFor("cuda", 2)).toEqual([{ name: "cuda", deviceId: 2 }]);
  });

  it("take the device from TURNPIKE_CUDA_DEVICE_ID, else 0", () => {
    expect(cudaDeviceId({})).toBe(0);
    expect(cudaDeviceId({ TURNPIKE_CUDA_DEVICE_ID: "1" })).toBe(1);
    expect(() => cudaDeviceId({ TURNPIKE_CUDA_DEVICE_ID: "gpu0" })).toThrow(/must be a device number/);
  });
});

describe("a worker asked for CUDA on a machine without it", () => {
  const prefix = uniqueName("w-ep");
  let broker: fx.BrokerClient;
  let worker: Worker;

  beforeAll(async () => {
    const config = fx.runtimeConfig(prefix, {
      models: [{ name: "ocr", uri: fx.OCR_URI, task: "ocr-recognition", executionProvider: "cuda" }],
    });
    worker = await startWorker({ env: fx.workerEnv(), config, model: "ocr" });
    await worker.ready;
    broker = await fx.BrokerClient.connect(prefix);
  }, 60_000);

  afterAll(async () => {
    await worker?.close();
    await broker?.cleanup(["ocr"]);
  });

  it("falls back to the CPU and still reads the line exactly", async () => {
    expect(cudaProviderLibrary().installed).toBe(false); // what this test assumes of the machine
    const task = fx.makeTask(
      { kind: "model", name: "ocr" },
      [{ step: "ocr", model: "ocr" }],
      [fx.imageInput(fx.renderLinePng("Turnpike 2026"))],
    );
    await broker.publishTask("ocr", task);
    const [result] = await broker.results(1);
    expect(result?.status).toBe("succeeded");
    const text = result!.outputs!.find((o) => o.name === "text")!;
    expect(toJsonData(decodeTensor(text))).toEqual(["Turnpike 2026"]);
  });

  it("reports the fallback in its metrics", async () => {
    const metrics = await (await fetch(`${worker.url}/metrics`)).text();
    expect(metrics).toMatch(
      /turnpike_execution_provider_fallback\{[^}]*model="ocr",requested="cuda",used="cpu"[^}]*\} 1/,
    );
  });

  it("reports it where the operator reads it: its consumer arguments on the model queue", async () => {
    const queue = names(prefix).modelQueue("ocr");
    let args: Record<string, unknown>[] = [];
    // The management API refreshes consumer details every few seconds.
    await fx.eventually(async () => {
      args = (await inspectQueue(rabbitManagementUrl(), queue))?.consumerArguments ?? [];
      return args.length === 1;
    }, 20_000);
    expect(args[0]).toMatchObject({
      [REQUESTED_PROVIDER_ARGUMENT]: "cuda",
      [USED_PROVIDER_ARGUMENT]: "cpu",
      [FALLBACK_REASON_ARGUMENT]: expect.stringContaining("no CUDA build of onnxruntime-node"),
    });
    expect(providerFallbacks(args)).toEqual([
      { requested: "cuda", used: "cpu", reason: expect.stringContaining("use the CUDA image variant") },
    ]);
  });
});
