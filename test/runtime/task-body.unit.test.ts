// The task body codec (runtime/shared/task-body.ts) and how the worker and the collector read it:
// raw tensor bytes after a JSON header, the older all-JSON form, and broken frames. No services.
import { describe, expect, it } from "vitest";
import { deadTaskResult } from "../../runtime/collector/dead-task.js";
import { TASK_FRAME, type InferenceTask } from "../../runtime/shared/contracts/index.js";
import { decodeTaskBody, encodeTaskBody, readTaskHeader } from "../../runtime/shared/task-body.js";
import {
  decodeTensor,
  encodeTensor,
  textTensor,
  toBase64Tensor,
  toOnnx,
} from "../../runtime/shared/tensors.js";
import {
  MalformedTaskError,
  nextTask,
  parseTask,
  UnreadableMessageError,
} from "../../runtime/worker/task-codec.js";

const pixels = Float32Array.from({ length: 3 * 4 * 5 }, (_, i) => i / 7 - 2);

function task(inputs: InferenceTask["inputs"]): InferenceTask {
  return {
    requestId: "0b0e8a5e-8d7f-4a53-9d4b-7a3c2f1e0d9c",
    tenant: "acme",
    target: { kind: "pipeline", name: "ocr" },
    route: [
      { step: "rec", model: "ocr" },
      { step: "decode", processor: "ctc-decode" },
    ],
    inputs,
    parameters: { note: "héllo" },
    reservedTokens: 70,
    inputTokens: 6,
    outputTokens: 0,
    submittedAt: 1_765_000_000_000,
    steps: [],
  };
}

const rawX = () =>
  encodeTensor({ name: "x", datatype: "FP32", shape: [1, 3, 4, 5], data: pixels }, { raw: true });
const texts = () => encodeTensor({ name: "t", datatype: "BYTES", shape: [2], data: ["a", "bé"] });

/** A framed body built by hand: magic, header length, header JSON, then `tail`. */
function frame(header: unknown, tail = Buffer.alloc(0), length?: number): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.write(TASK_FRAME.magic, "latin1");
  prefix.writeUInt32LE(length ?? json.length, 4);
  return Buffer.concat([prefix, json, tail]);
}

describe("task bodies", () => {
  it("carries raw tensor bytes after a JSON header and reads them back exactly", () => {
    const original = task([rawX(), texts()]);
    const body = encodeTaskBody(original);
    expect(body.contentType).toBe(TASK_FRAME.contentType);
    expect(body.content.subarray(0, 4).toString("latin1")).toBe(TASK_FRAME.magic);
    // The bytes themselves, not base64: header + 240 bytes of FP32.
    expect(body.content.length).toBeLessThan(JSON.stringify(toBase64Tensor(rawX())).length + 600);
    const header = readTaskHeader(body.content) as InferenceTask;
    expect(header.inputs[0]).toEqual({
      name: "x",
      datatype: "FP32",
      shape: [1, 3, 4, 5],
      binaryDataSize: 240,
    });

    const parsed = parseTask(body.content);
    expect({ ...parsed, inputs: [] }).toEqual({ ...original, inputs: [] });
    expect(parsed.inputs[1]).toEqual(texts());
    const x = decodeTensor(parsed.inputs[0]!);
    expect(x.data).toEqual(pixels);
    expect(x.data).toBeInstanceOf(Float32Array);
    // onnxruntime gets the numbers, not the bytes.
    expect(toOnnx(parsed.inputs[0]!).data).toEqual(pixels);
  });

  it("keeps a task without raw tensors as plain JSON, and still reads the older all-JSON form", () => {
    const textOnly = task([texts()]);
    const body = encodeTaskBody(textOnly);
    expect(body.contentType).toBe("application/json");
    expect(JSON.parse(body.content.toString("utf8"))).toEqual(textOnly);

    // What a gateway before the framing published: numbers as base64 inside the JSON.
    const old = task([toBase64Tensor(rawX())]);
    expect(typeof old.inputs[0]!.data).toBe("string");
    const parsed = parseTask(Buffer.from(JSON.stringify(old)));
    expect(parsed).toEqual(old);
    expect(decodeTensor(parsed.inputs[0]!).data).toEqual(pixels);
  });

  it("gives a pipeline's next step raw outputs that the next worker reads back", () => {
    const first = parseTask(encodeTaskBody(task([rawX()])).content);
    const outputs = [decodeTensor(first.inputs[0]!), textTensor("label", ["x"])];
    const timing = { step: "rec", worker: "w1", queuedMs: 1, inferMs: 2, batchSize: 1 };
    const next = nextTask(first, first.route.slice(1), outputs, 3, [timing]);
    expect(next.inputs[0]!.data).toBeInstanceOf(Uint8Array);
    const read = parseTask(encodeTaskBody(next).content);
    expect(read.route).toEqual([{ step: "decode", processor: "ctc-decode" }]);
    expect(read.outputTokens).toBe(3);
    expect(read.steps).toEqual([timing]);
    expect(decodeTensor(read.inputs[0]!).data).toEqual(pixels);
    expect(decodeTensor(read.inputs[1]!)).toEqual(outputs[1]);
  });

  it("refuses a broken frame with a clear error, as a failed request when the header names one", () => {
    const header = readTaskHeader(encodeTaskBody(task([rawX()])).content) as Record<string, unknown>;
    const bytes = Buffer.from(pixels.buffer);
    const cases: [string, Buffer, RegExp][] = [
      ["cut short", Buffer.from(TASK_FRAME.magic + "\u0001", "latin1"), /cut short/],
      ["header past the body", frame(header, bytes, 1_000_000), /runs past the body/],
      [
        "header not JSON",
        Buffer.concat([frame({}).subarray(0, 8), Buffer.from("{nope")]),
        /task header is not JSON/,
      ],
      ["header not an object", frame([1, 2]), /not a JSON object/],
    ];
    for (const [, body, message] of cases) {
      expect(() => decodeTaskBody(body)).toThrow(message);
      expect(() => parseTask(body)).toThrow(UnreadableMessageError);
    }
    // The header is readable and names the request: it ends with a failed result saying why.
    const sized = (size: unknown) => ({
      ...header,
      inputs: [{ ...(header.inputs as object[])[0], binaryDataSize: size }],
    });
    const malformed: [Buffer, RegExp][] = [
      [frame(header, bytes.subarray(0, 100)), /inputs\.0 needs 240 bytes at offset \d+, the body has/],
      [frame(header, Buffer.concat([bytes, Buffer.alloc(3)])), /the tensors take \d+ bytes, the body has/],
      [frame(sized(-1), bytes), /inputs\.0\.binaryDataSize is not a byte count/],
      [frame(sized("240"), bytes), /inputs\.0\.binaryDataSize is not a byte count/],
    ];
    for (const [body, message] of malformed) {
      let error: unknown;
      try {
        parseTask(body);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(MalformedTaskError);
      expect((error as MalformedTaskError).code).toBe("invalid_task");
      expect((error as MalformedTaskError).message).toMatch(message);
      expect((error as MalformedTaskError).task.requestId).toBe(header.requestId);
    }
  });

  it("lets the collector record a dead-lettered framed task from its header", () => {
    const body = encodeTaskBody(task([rawX()])).content;
    const headers = {
      "x-first-death-queue": "turnpike.model.ocr",
      "x-death": [{ reason: "delivery_limit", count: 3 }],
    };
    const dead = deadTaskResult(body, headers, "turnpike.model.", 1_765_000_001_000);
    expect(dead.ok).toBe(true);
    if (dead.ok) {
      expect(dead.result).toMatchObject({ status: "failed", inputTokens: 6, reservedTokens: 70 });
      expect(dead.result.error?.code).toBe("dead_lettered");
    }
  });
});
