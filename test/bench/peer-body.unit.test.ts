// Section 6's binary body: the same tensor as the JSON body, in the layout the gateway's own reader
// (splitBinaryBody) takes apart, so both servers are sent the same numbers either way.
import { describe, expect, it } from "vitest";
import { BENCH_LINE } from "../../bench/lib/env.js";
import { binaryTensorBody, tensorBody } from "../../bench/sections/kserve.js";
import { splitBinaryBody } from "../../runtime/gateway/oip/binary-tensors.js";
import { renderLinePng } from "../fixtures/text-line.js";

describe("section 6's request bodies", () => {
  it("sends the JSON body's tensor as OIP binary data: header, then little-endian FP32", () => {
    const png = renderLinePng(BENCH_LINE);
    const [json] = tensorBody(png).inputs;
    const { bytes, headers } = binaryTensorBody(png);
    expect(headers["content-type"]).toBe("application/octet-stream");

    const body = splitBinaryBody(bytes, headers["inference-header-content-length"]!, JSON.parse);
    const [input] = (body.json as { inputs: Record<string, unknown>[] }).inputs;
    expect(input).toEqual({
      name: "x",
      datatype: "FP32",
      shape: json!.shape,
      parameters: { binary_data_size: json!.data.length * 4 },
    });
    expect(body.binary.length).toBe(json!.data.length * 4);
    const values = Array.from({ length: json!.data.length }, (_, i) => body.binary.readFloatLE(i * 4));
    // FP32 holds each JSON value to its nearest single-precision float, as the gateway stores it.
    expect(values).toEqual(json!.data.map((v) => Math.fround(v)));
  });
});
