// Dictionary-encoded tensors in task bodies (runtime/shared/tensor-dictionary.ts, task-body.ts):
// exact round trips, the fallback to plain bytes, and broken frames. No services.
import { describe, expect, it } from "vitest";
import { deadTaskResult } from "../../runtime/collector/dead-task.js";
import { TASK_FRAME, type InferenceTask } from "../../runtime/shared/contracts/index.js";
import { decodeTaskBody, encodeTaskBody, readTaskHeader } from "../../runtime/shared/task-body.js";
import {
  DICTIONARY_MIN_ELEMENTS,
  dictionaryDecode,
  dictionaryEncode,
} from "../../runtime/shared/tensor-dictionary.js";
import { encodeTensor } from "../../runtime/shared/tensors.js";
import { decodeTaskInput } from "../../runtime/worker/task-inputs.js";
import { MalformedTaskError, parseTask } from "../../runtime/worker/task-codec.js";
import { imageToTensor } from "../../runtime/worker/processors/image-to-tensor.js";
import { renderLinePng } from "../fixtures/text-line.js";

/** An FP32 [1,3,48,320] line as the OCR model gets it: 46,080 elements, at most 256 distinct. */
function ocrLine(): Float32Array {
  const context = { dictionary: () => [], settings: {}, parameters: {} };
  const png = renderLinePng("Order 7731 shipped");
  const [x] = imageToTensor.run(
    [{ name: "image", datatype: "BYTES", shape: [1], data: [new Uint8Array(png)] }],
    context,
  );
  return x!.data as Float32Array;
}

function task(data: Float32Array | Int32Array, datatype: "FP32" | "INT32" = "FP32"): InferenceTask {
  return {
    requestId: "0b0e8a5e-8d7f-4a53-9d4b-7a3c2f1e0d9c",
    tenant: "acme",
    target: { kind: "model", name: "ocr" },
    route: [{ step: "ocr", model: "ocr" }],
    inputs: [encodeTensor({ name: "x", datatype, shape: [data.length], data }, { raw: true })],
    reservedTokens: 70,
    inputTokens: 6,
    outputTokens: 0,
    submittedAt: 1_765_000_000_000,
    steps: [],
  };
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe("dictionary-encoded tensors", () => {
  it("round-trips every bit pattern exactly: -0, NaN payloads, infinities, denormals", () => {
    const words = new Uint32Array(DICTIONARY_MIN_ELEMENTS * 3);
    const specials = [0x80000000, 0x7fc00001, 0xffc12345, 0x7f800000, 0xff800000, 0x00400000, 0];
    for (let i = 0; i < words.length; i++) words[i] = specials[i % specials.length]! + ((i >> 3) % 30);
    const encoded = dictionaryEncode(bytesOf(words))!;
    expect(encoded.indices.length).toBe(words.length);
    expect(encoded.table.byteLength).toBe(7 * 30 * 4);
    expect(encoded.table.byteLength).toBeLessThanOrEqual(256 * 4);
    expect(dictionaryDecode(encoded.table, encoded.indices)).toEqual(bytesOf(words));
  });

  it("reads bytes that do not start on a 4-byte boundary", () => {
    const words = Uint32Array.from({ length: DICTIONARY_MIN_ELEMENTS }, (_, i) => i % 5);
    const shifted = new Uint8Array(words.byteLength + 1);
    shifted.set(bytesOf(words), 1);
    const view = shifted.subarray(1);
    const encoded = dictionaryEncode(view)!;
    expect(dictionaryDecode(encoded.table, encoded.indices)).toEqual(view);
    // A binary request body's tensor is a Buffer view into a larger (pooled) buffer, whose slice()
    // is another view, not a copy.
    const body = Buffer.alloc(words.byteLength + 7, 0xff);
    body.set(bytesOf(words), 3);
    const fromBody = body.subarray(3, 3 + words.byteLength);
    const decoded = dictionaryEncode(fromBody)!;
    expect(Buffer.from(dictionaryDecode(decoded.table, decoded.indices)).equals(fromBody)).toBe(true);
  });

  it("falls back when a tensor has 257 distinct values, is small, or is not whole 4-byte elements", () => {
    const exactly256 = Uint32Array.from({ length: DICTIONARY_MIN_ELEMENTS }, (_, i) => i % 256);
    expect(dictionaryEncode(bytesOf(exactly256))?.table.byteLength).toBe(1024);
    const many = Uint32Array.from({ length: DICTIONARY_MIN_ELEMENTS }, (_, i) => i % 257);
    expect(dictionaryEncode(bytesOf(many))).toBeUndefined();
    expect(dictionaryEncode(new Uint8Array(4 * (DICTIONARY_MIN_ELEMENTS - 1)))).toBeUndefined();
    expect(dictionaryEncode(new Uint8Array(4 * DICTIONARY_MIN_ELEMENTS + 2))).toBeUndefined();
  });

  it("carries an OCR line in a quarter of the bytes and gives the worker the same floats", () => {
    const line = ocrLine();
    const body = encodeTaskBody(task(line)).content;
    expect(body.length).toBeLessThan(line.byteLength / 4 + 2_000);
    const header = readTaskHeader(body) as { inputs: Record<string, unknown>[] };
    expect(header.inputs[0]![TASK_FRAME.dictionaryKey]).toBeGreaterThan(1);
    expect(header.inputs[0]![TASK_FRAME.dictionaryKey]).toBeLessThanOrEqual(256);
    const x = decodeTaskInput(parseTask(body).inputs[0]!);
    expect(x.data).toBeInstanceOf(Float32Array);
    expect(bytesOf(x.data as Float32Array)).toEqual(bytesOf(line));
  });

  it("sends a tensor of many distinct values, and other datatypes, as plain bytes", () => {
    const noise = Float32Array.from({ length: 4096 }, (_, i) => Math.sin(i) * 1000);
    const plain = encodeTaskBody(task(noise));
    const header = readTaskHeader(plain.content) as { inputs: Record<string, unknown>[] };
    expect(header.inputs[0]).not.toHaveProperty(TASK_FRAME.dictionaryKey);
    expect(header.inputs[0]![TASK_FRAME.sizeKey]).toBe(noise.byteLength);
    expect(decodeTaskInput(parseTask(plain.content).inputs[0]!).data).toEqual(noise);

    const labels = Int32Array.from({ length: 4096 }, (_, i) => i % 3);
    const ints = parseTask(encodeTaskBody(task(labels, "INT32")).content);
    expect(decodeTaskInput(ints.inputs[0]!).data).toEqual(labels);
  });

  it("refuses a broken dictionary as a failed request naming why, and the collector still reads its header", () => {
    const body = encodeTaskBody(task(ocrLine())).content;
    const header = readTaskHeader(body) as InferenceTask & { inputs: Record<string, unknown>[] };
    const headerLength = body.readUInt32LE(4);
    const tensor = body.subarray(8 + headerLength);
    const values = header.inputs[0]![TASK_FRAME.dictionaryKey] as number;
    const reframe = (input: Record<string, unknown>, tail: Buffer) => {
      const json = Buffer.from(JSON.stringify({ ...header, inputs: [{ ...header.inputs[0], ...input }] }));
      const prefix = Buffer.alloc(8);
      prefix.write(TASK_FRAME.magic, "latin1");
      prefix.writeUInt32LE(json.length, 4);
      return Buffer.concat([prefix, json, tail]);
    };
    const pastTable = Buffer.from(tensor);
    pastTable[values * 4 + 10] = values; // one index past the table's last element
    const cases: [Buffer, RegExp][] = [
      [reframe({}, pastTable), /inputs\.0: index \d+ at element 10, the dictionary has \d+/],
      [reframe({ [TASK_FRAME.dictionaryKey]: 0 }, tensor), /binaryDictionarySize is not a table of 1-256/],
      [reframe({ [TASK_FRAME.dictionaryKey]: 257 }, tensor), /binaryDictionarySize is not a table/],
      [reframe({ [TASK_FRAME.dictionaryKey]: "4" }, tensor), /binaryDictionarySize is not a table/],
      [
        reframe({ [TASK_FRAME.dictionaryKey]: 200, [TASK_FRAME.sizeKey]: 12 }, tensor.subarray(0, 12)),
        /binaryDictionarySize is not a table of 1-256 elements within its 12 bytes/,
      ],
    ];
    for (const [broken, message] of cases) {
      expect(() => decodeTaskBody(broken)).toThrow(message);
      let error: unknown;
      try {
        parseTask(broken);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(MalformedTaskError);
      expect((error as MalformedTaskError).message).toMatch(message);
      expect((error as MalformedTaskError).task.requestId).toBe(header.requestId);
      const dead = deadTaskResult(
        broken,
        { "x-first-death-queue": "turnpike.model.ocr" },
        "turnpike.model.",
        1,
      );
      expect(dead.ok).toBe(true);
    }
  });
});
