// The binary tensor data extension's codecs, pure: request bodies split and inlined into the JSON
// forms the parser validates, output selection, and response bodies in the extension's layout.
import { describe, expect, it } from "vitest";
import {
  BinaryInferBody,
  binaryOutputs,
  encodeBinaryResponse,
  inlineBinaryInputs,
  splitBinaryBody,
  splitBytesElements,
  tensorBytes,
} from "../../runtime/gateway/oip/binary-tensors.js";
import { parseInferRequest } from "../../runtime/gateway/infer-request.js";
import { encodeTensor } from "../../runtime/shared/tensors.js";

/** A BYTES tensor's binary data: 4-byte little-endian length, then the bytes, per element. */
function bytesData(...elements: Buffer[]): Buffer {
  return Buffer.concat(
    elements.flatMap((e) => {
      const length = Buffer.alloc(4);
      length.writeUInt32LE(e.length);
      return [length, e];
    }),
  );
}

describe("request bodies", () => {
  it("split at Inference-Header-Content-Length", () => {
    const body = splitBinaryBody(Buffer.from('{"a":1}xyz'), "7", JSON.parse);
    expect(body.json).toEqual({ a: 1 });
    expect(body.binary.toString()).toBe("xyz");
    expect(() => splitBinaryBody(Buffer.from("{}"), "3", JSON.parse)).toThrow(/from 1 to the body's 2/);
    expect(() => splitBinaryBody(Buffer.from("{}"), "-1", JSON.parse)).toThrow(/whole number/);
  });

  it("inline numbers as their bytes, UTF-8 BYTES as text and other BYTES as base64", () => {
    const floats = Buffer.from(new Float32Array([1, 2.5, -3]).buffer);
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47]);
    const text = bytesData(Buffer.from("héllo"), Buffer.from(""));
    const binary = bytesData(png);
    const json = {
      inputs: [
        { name: "x", datatype: "FP32", shape: [1, 3], parameters: { binary_data_size: floats.length } },
        { name: "t", datatype: "BYTES", shape: [2], parameters: { binary_data_size: text.length } },
        { name: "image", datatype: "BYTES", shape: [1], parameters: { binary_data_size: binary.length } },
        { name: "j", datatype: "INT32", shape: [1], data: [7] },
      ],
    };
    const inlined = inlineBinaryInputs(new BinaryInferBody(json, Buffer.concat([floats, text, binary])));
    expect(inlined).toEqual({
      inputs: [
        {
          name: "x",
          datatype: "FP32",
          shape: [1, 3],
          data: floats,
          parameters: { content_type: "base64" },
        },
        {
          name: "t",
          datatype: "BYTES",
          shape: [2],
          data: ["héllo", ""],
          parameters: { content_type: "str" },
        },
        {
          name: "image",
          datatype: "BYTES",
          shape: [1],
          data: [png.toString("base64")],
          parameters: { content_type: "base64" },
        },
        { name: "j", datatype: "INT32", shape: [1], data: [7] },
      ],
    });
  });

  it("refuse sizes that do not add up, and data given twice", () => {
    const input = (size: number, extra = {}) => ({
      inputs: [{ name: "x", datatype: "FP32", shape: [1], parameters: { binary_data_size: size }, ...extra }],
    });
    expect(() => inlineBinaryInputs(new BinaryInferBody(input(8), Buffer.alloc(4)))).toThrow(/past the end/);
    expect(() => inlineBinaryInputs(new BinaryInferBody(input(4), Buffer.alloc(8)))).toThrow(
      /4 bytes after the inputs' binary_data_size that no input claims/,
    );
    expect(() => inlineBinaryInputs(new BinaryInferBody(input(1.5), Buffer.alloc(0)))).toThrow(
      /whole number/,
    );
    expect(() => inlineBinaryInputs(new BinaryInferBody(input(4, { data: [1] }), Buffer.alloc(4)))).toThrow(
      /either data or binary_data_size/,
    );
    expect(() => splitBytesElements(Buffer.from([5, 0, 0, 0, 1]), "t")).toThrow(
      /claims 5 bytes, only 1 left/,
    );
    expect(() => splitBytesElements(Buffer.from([5, 0]), "t")).toThrow(/inside an element's 4-byte length/);
  });

  it("go to the task as the same bytes, refused when their size does not fit the shape", () => {
    const floats = Buffer.from(Float32Array.of(1, 2.5, -3).buffer);
    const header = (shape: number[], size: number) => ({
      inputs: [{ name: "x", datatype: "FP32", shape, parameters: { binary_data_size: size } }],
    });
    const parsed = parseInferRequest(inlineBinaryInputs(new BinaryInferBody(header([1, 3], 12), floats)));
    expect(parsed.inputs[0]!.binary).toBe(true);
    expect(Buffer.from(parsed.inputs[0]!.wire.data as Uint8Array)).toEqual(floats);
    const short = inlineBinaryInputs(new BinaryInferBody(header([1, 4], 12), floats));
    expect(() => parseInferRequest(short)).toThrow("input x: FP32 [1, 4] needs 16 bytes, got 12");
  });
});

describe("outputs", () => {
  it("are binary per output first, then per request", () => {
    const pick = binaryOutputs({
      parameters: { binary_data_output: true },
      outputs: [{ name: "text", parameters: { binary_data: false } }, { name: "confidence" }],
    });
    expect([pick("text"), pick("confidence"), pick("other")]).toEqual([false, true, true]);
    expect(binaryOutputs({ outputs: [{ name: "a", parameters: { binary_data: true } }] })("b")).toBe(false);
  });

  it("go after the JSON header, BYTES length-prefixed and numbers little-endian", () => {
    const text = encodeTensor({ name: "text", datatype: "BYTES", shape: [2], data: ["ab", "ü"] });
    const confidence = encodeTensor({ name: "confidence", datatype: "FP32", shape: [2], data: [0.5, 1] });
    const response = {
      model_name: "ocr",
      outputs: [
        { name: "text", datatype: "BYTES", shape: [2], data: ["ab", "ü"] },
        { name: "confidence", datatype: "FP32", shape: [2], data: [0.5, 1] },
      ],
    };
    const encoded = encodeBinaryResponse(response, [text, confidence], (n) => n === "text")!;
    const header = JSON.parse(encoded.body.subarray(0, encoded.headerLength).toString());
    expect(header.outputs).toEqual([
      { name: "text", datatype: "BYTES", shape: [2], parameters: { binary_data_size: 4 + 2 + 4 + 2 } },
      { name: "confidence", datatype: "FP32", shape: [2], data: [0.5, 1] },
    ]);
    expect(encoded.body.subarray(encoded.headerLength)).toEqual(
      bytesData(Buffer.from("ab"), Buffer.from("ü")),
    );
    expect(tensorBytes(confidence)).toEqual(Buffer.from(new Float32Array([0.5, 1]).buffer));
    expect(encodeBinaryResponse(response, [text, confidence], () => false)).toBeUndefined();
  });
});
