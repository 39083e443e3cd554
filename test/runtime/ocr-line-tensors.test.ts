// OCR pre-processing in the gateway (TURNPIKE_OCR_PREPROCESS=gateway): the task carries the model's
// input tensor, made by the worker's own code, and the real worker with the real PP-OCRv4 model reads
// the same text from it as from the PNG; a PNG that does not decode is a 400 before anything is queued.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ocrLineTensors } from "../../runtime/gateway/ocr-line-tensors.js";
import type { Gateway } from "../../runtime/gateway/gateway.js";
import type { ModelConfig } from "../../runtime/shared/contracts/index.js";
import { decodeTaskBody, encodeTaskBody } from "../../runtime/shared/task-body.js";
import { decodeTensor, TensorError } from "../../runtime/shared/tensors.js";
import { imageToTensor } from "../../runtime/worker/processors/image-to-tensor.js";
import { startWorker, type Worker } from "../../runtime/worker/worker.js";
import {
  call,
  errorOf,
  gatewayFixture,
  KEYS,
  standardTenants,
  type GatewayFixture,
} from "./helpers/gateway-fixture.js";
import { imageInput, OCR_URI, renderLinePng, workerEnv } from "./helpers/worker-fixtures.js";

const OCR_MODEL = {
  name: "ocr",
  uri: OCR_URI,
  task: "ocr-recognition",
  tokens: { mode: "characters", maxOutputTokens: 64 },
  batching: { maxBatchSize: 4, maxDelayMs: 5 },
} as const;

const context = { dictionary: () => [], settings: {}, parameters: {} };

describe("ocrLineTensors", () => {
  const model = { ...OCR_MODEL } as unknown as ModelConfig;
  const pngs = [
    renderLinePng("Invoice 12345"),
    renderLinePng("The quick brown fox jumps over the lazy dog 0123456789"),
  ];

  it("makes the tensor the worker makes, to the bit, and the task body carries it as a dictionary", () => {
    const [tensor] = ocrLineTensors("gateway", model, [imageInput(...pngs)]);
    const worker = imageToTensor.run([decodeTensor(imageInput(...pngs))], context)[0]!;
    expect(tensor!.datatype).toBe("FP32");
    expect(tensor!.shape).toEqual(worker.shape);
    expect(decodeTensor(tensor!).data).toEqual(worker.data);
    // One line (at most 256 distinct values with its zero padding) travels as a dictionary: a quarter.
    const [line] = ocrLineTensors("gateway", model, [imageInput(pngs[0]!)]);
    const body = encodeTaskBody({ inputs: [line!] } as never);
    expect(body.content.byteLength).toBeLessThan((line!.data as Uint8Array).byteLength / 3);
    const back = decodeTaskBody(body.content) as { inputs: Parameters<typeof decodeTensor>[0][] };
    expect(decodeTensor(back.inputs[0]!).data).toEqual(decodeTensor(line!).data);
  });

  it("leaves the inputs alone in worker mode, for tensors, and for other tasks", () => {
    const image = [imageInput(pngs[0]!)];
    expect(ocrLineTensors("worker", model, image)).toBe(image);
    expect(ocrLineTensors("gateway", { ...model, task: "generic" } as ModelConfig, image)).toBe(image);
    expect(ocrLineTensors("gateway", undefined, image)).toBe(image);
    const [tensor] = ocrLineTensors("gateway", model, image);
    expect(ocrLineTensors("gateway", model, [tensor!])).toEqual([tensor]);
  });

  it("refuses a PNG that does not decode with a TensorError naming the element", () => {
    const bad = imageInput(pngs[0]!, Buffer.from("not a png at all"));
    expect(() => ocrLineTensors("gateway", model, [bad])).toThrow(TensorError);
    expect(() => ocrLineTensors("gateway", model, [bad])).toThrow(/image 1/);
  });
});

describe("a gateway that pre-processes OCR lines, with the real worker", () => {
  let fx: GatewayFixture;
  let worker: Worker;
  let preprocessing: Gateway;

  beforeAll(async () => {
    fx = await gatewayFixture({
      config: { models: [OCR_MODEL], pipelines: [], tenants: [{ name: "acme", models: [] }] },
      tenants: standardTenants().filter((t) => t.name === "acme"),
      queues: { ocr: {} },
      collector: true,
    });
    worker = await startWorker({ env: workerEnv(), config: fx.config, model: "ocr" });
    await worker.ready;
    preprocessing = await fx.another({ TURNPIKE_OCR_PREPROCESS: "gateway" });
  }, 120_000);

  afterAll(async () => {
    await worker?.close();
    await fx?.close();
  });

  const body = (...lines: string[]) => ({
    inputs: [
      {
        name: "image",
        datatype: "BYTES",
        shape: [lines.length],
        data: lines.map((l) => renderLinePng(l).toString("base64")),
      },
    ],
  });

  it("answers the same text and confidence as the worker-side path", async () => {
    const request = body("Invoice 12345", "HELLO WORLD 42");
    const answers = [];
    for (const url of [fx.url, preprocessing.url]) {
      const res = await call(url, "/v2/models/ocr/infer", { key: KEYS.acme, body: request });
      expect(res.status).toBe(200);
      answers.push((await res.json()) as { outputs: { name: string; data: unknown[] }[] });
    }
    const text = answers.map((a) => a.outputs.find((o) => o.name === "text")!.data);
    expect(text[0]).toEqual(["Invoice 12345", "HELLO WORLD 42"]);
    expect(text[1]).toEqual(text[0]);
    const confidence = answers.map((a) => a.outputs.find((o) => o.name === "confidence")!.data);
    expect(confidence[1]).toEqual(confidence[0]);
  });

  it("refuses a PNG that does not decode with 400 invalid_tensor, before it is queued", async () => {
    const request = {
      inputs: [
        { name: "image", datatype: "BYTES", shape: [1], data: [Buffer.from("nope").toString("base64")] },
      ],
    };
    const res = await call(preprocessing.url, "/v2/models/ocr/infer", { key: KEYS.acme, body: request });
    expect(res.status).toBe(400);
    const error = await errorOf(res);
    expect(error.code).toBe("invalid_tensor");
    expect(error.message).toMatch(/image 0 is not a PNG/);
    // The worker-side gateway queues the same request, and the worker refuses it: 422, not 400.
    const queued = await call(fx.url, "/v2/models/ocr/infer", { key: KEYS.acme, body: request });
    expect(queued.status).toBe(422);
  });
});
