// Long number arrays read without JSON.parse (runtime/gateway/oip/number-runs.ts), pure: the same
// values as JSON.parse, nothing lifted that JSON.parse would refuse or read otherwise, and the
// same parsed request or the same 4xx refusal as the plain path.
import { describe, expect, it } from "vitest";
import {
  liftNumberRuns,
  MIN_LIFT_BODY_BYTES,
  restoreNumberRuns,
} from "../../runtime/gateway/oip/number-runs.js";
import { parseInferRequest } from "../../runtime/gateway/infer-request.js";
import { ApiError } from "../../runtime/gateway/errors.js";

/** The body parsed the fast way (lifted runs put back), or undefined when nothing was lifted. */
function lifted(text: string): unknown {
  const result = liftNumberRuns(Buffer.from(text));
  return result && restoreNumberRuns(JSON.parse(result.text), result);
}

const many = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));

/** What parseInferRequest makes of a body, or the refusal's status, code and message. */
function outcome(body: unknown) {
  try {
    const parsed = parseInferRequest(body);
    return parsed.inputs.map((i) => ({
      ...i,
      wire: { ...i.wire, data: Buffer.from(i.wire.data as Uint8Array) },
    }));
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    return { status: error.status, code: error.code, message: error.message };
  }
}

describe("number runs", () => {
  it("read every number of the exact fast path as JSON.parse does", () => {
    const values = [
      ...many(5000, (i) => Math.round(Math.sin(i) * 1e4) / 1e4),
      ...many(500, (i) => Math.round(Math.sin(i) * 1e15) / 1e15),
      -0,
      0,
      1,
      999999999999999,
      0.1,
      0.30000000000001,
    ];
    const text = JSON.stringify({ inputs: [{ name: "x", datatype: "FP64", data: values }] }).replace(
      "]}]}",
      ", 0.000000000000001, 123456789012345, -0, -0.0 ]}]}",
    );
    const expected = (JSON.parse(text) as { inputs: { data: number[] }[] }).inputs[0]!.data;
    const got = (lifted(text) as { inputs: { data: Float64Array }[] }).inputs[0]!.data;
    expect(got).toBeInstanceOf(Float64Array);
    expect(Array.from(got)).toEqual(expected);
    expect(Object.is(got.at(-1), -0) && Object.is(got.at(-2), -0)).toBe(true);
    // FP32 data comes back as its Float32Array, other datatypes as the plain array.
    const fp32 = lifted(text.replace('"FP64"', '"FP32"')) as { inputs: { data: Float32Array }[] };
    expect(fp32.inputs[0]!.data).toEqual(new Float32Array(expected));
    const int32 = lifted(text.replace('"FP64"', '"INT32"')) as { inputs: { data: unknown }[] };
    expect(int32.inputs[0]!.data).toEqual(expected);
  });

  it("leave the whole body to JSON.parse at the first number outside the exact fast path", () => {
    const short = "0.5,".repeat(MIN_LIFT_BODY_BYTES / 2);
    // numpy's float32 tolist() writes 17 significant digits; exponents and 16+ digit integers too.
    for (const inexact of [
      "0.12345679104328156",
      "1E5",
      "-2.5e-3",
      "1e400",
      "5e-324",
      "12345678901234567890",
    ]) {
      const text = `{"inputs":[{"name":"x","datatype":"FP32","data":[${short}${inexact}]}]}`;
      expect(liftNumberRuns(Buffer.from(text)), inexact).toBeUndefined();
    }
    const floats = Array.from(new Float32Array(20_000).map((_, i) => Math.sin(i)));
    const body = JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", data: floats }] });
    expect(liftNumberRuns(Buffer.from(body))).toBeUndefined();
  });

  it("leave to JSON.parse what is not a flat array of JSON numbers under a data key", () => {
    const ones = "1,".repeat(MIN_LIFT_BODY_BYTES);
    for (const text of [
      `{"inputs":[{"data":[${ones}NaN]}]}`,
      `{"inputs":[{"data":[${ones}01]}]}`,
      `{"inputs":[{"data":[${ones}1.]}]}`,
      `{"inputs":[{"data":[${ones}"1"]}]}`,
      `{"inputs":[{"data":[${ones}[1]]}]}`,
      `{"inputs":[{"data":[${ones}1,]}]}`,
      `{"inputs":[{"values":[${ones}1]}]}`,
      `{"id":"\\"data\\":[${ones}1]"}`,
      `{"inputs":[{"data":[1,2,3]}]}`,
    ]) {
      expect(liftNumberRuns(Buffer.from(text)), text.slice(-40)).toBeUndefined();
    }
  });

  it("put a run that is not an input's data back as a plain array", () => {
    const data = many(3000, (i) => i);
    const body = lifted(JSON.stringify({ inputs: [], parameters: { data } })) as {
      parameters: { data: unknown };
    };
    expect(body.parameters.data).toEqual(data);
  });

  it("give the same request or the same refusal as the plain path", () => {
    const x = (over: Record<string, unknown>) => ({
      inputs: [{ name: "x", datatype: "FP32", shape: [1, 3, 48, 320], ...over }],
    });
    const pixels = many(46_080, (i) => Math.round(Math.cos(i) * 1e4) / 1e4);
    const bodies = [
      x({ data: pixels }),
      x({ datatype: "FP64", data: pixels }),
      x({ data: pixels.slice(1) }),
      x({ datatype: "INT32", data: pixels }),
      x({ datatype: "INT32", data: pixels.map((v) => Math.round(v * 1e5) * 1e5) }),
      x({ datatype: "UINT8", data: pixels.map((v) => Math.round(Math.abs(v) * 255)) }),
      x({ datatype: "BOOL", data: pixels }),
      x({ datatype: "BYTES", data: pixels }),
      x({ datatype: "FP16", shape: [2], data: pixels }),
      x({ datatype: "FP32", data: pixels, parameters: { content_type: "bogus" } }),
    ];
    for (const body of bodies) {
      const text = JSON.stringify(body);
      const fast = lifted(text);
      expect(fast).toBeDefined();
      expect(outcome(fast)).toEqual(outcome(JSON.parse(text)));
    }
    expect(outcome(lifted(JSON.stringify(bodies[2])))).toMatchObject({ status: 400, code: "invalid_tensor" });
  });
});
