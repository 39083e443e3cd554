// Malformed infer requests: each gets a 4xx with the expected stable code (never a 5xx), and none
// of them reserves quota or reaches a queue. Real Redis, RabbitMQ and PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, errorOf, gatewayFixture, KEYS, type GatewayFixture } from "./helpers/gateway-fixture.js";

let fx: GatewayFixture;
const BODY_LIMIT = 64 * 1024;

beforeAll(async () => {
  fx = await gatewayFixture({
    queues: { echo: {}, text: {}, ocr: {} },
    env: { TURNPIKE_BODY_LIMIT_BYTES: String(BODY_LIMIT) },
  });
});

afterAll(async () => {
  await fx?.close();
});

const x = (over: Record<string, unknown> = {}) => ({
  name: "x",
  datatype: "FP32",
  shape: [1, 3],
  data: [1, 2, 3],
  ...over,
});
const infer = (inputs: unknown[], extra: Record<string, unknown> = {}) => ({ inputs, ...extra });

/** An infer body with x FP32 [1, 3] as binary tensor data: a JSON header, then `data`. */
/** A valid JSON infer body sent with `headers`, expected to be refused with `status` and `code`. */
function jsonBodyCase(name: string, headers: Record<string, string>, status: number, code: string): Case {
  return { name, body: JSON.stringify(infer([x()])), headers, status, code };
}

function binaryCase(name: string, size: number, data: string, status: number, code: string): Case {
  const header = JSON.stringify(
    infer([{ name: "x", datatype: "FP32", shape: [1, 3], parameters: { binary_data_size: size } }]),
  );
  return {
    name,
    body: header + data,
    headers: { "inference-header-content-length": String(header.length) },
    status,
    code,
  };
}

interface Case {
  name: string;
  path?: string;
  method?: string;
  /** A string is sent as is. */
  body?: unknown;
  headers?: Record<string, string>;
  status: number;
  code: string;
}

const cases: Case[] = [
  {
    name: "text/plain body",
    body: "hello",
    headers: { "content-type": "text/plain" },
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "XML body",
    body: "<a/>",
    headers: { "content-type": "application/xml" },
    status: 415,
    code: "unsupported_media_type",
  },
  { name: "truncated JSON", body: '{"inputs": [', status: 400, code: "invalid_json" },
  {
    name: "empty JSON body",
    body: "",
    headers: { "content-type": "application/json" },
    status: 400,
    code: "empty_body",
  },
  {
    name: "prototype poisoning",
    body: '{"__proto__": {"polluted": 1}, "inputs": []}',
    status: 400,
    code: "invalid_json",
  },
  { name: "JSON array body", body: [], status: 400, code: "invalid_request" },
  { name: "no inputs", body: {}, status: 400, code: "invalid_request" },
  { name: "empty inputs", body: infer([]), status: 400, code: "invalid_request" },
  {
    name: "input without datatype",
    body: infer([{ name: "x", shape: [1, 3], data: [1, 2, 3] }]),
    status: 400,
    code: "invalid_request",
  },
  { name: "negative dimension", body: infer([x({ shape: [-1, 3] })]), status: 400, code: "invalid_request" },
  {
    name: "fractional dimension",
    body: infer([x({ shape: [1.5, 2] })]),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "too many dimensions",
    body: infer([x({ shape: [1, 1, 1, 1, 1, 1, 1, 1, 1] })]),
    status: 400,
    code: "invalid_request",
  },
  { name: "unknown datatype", body: infer([x({ datatype: "FLOAT" })]), status: 400, code: "invalid_tensor" },
  { name: "unknown input name", body: infer([x({ name: "z" })]), status: 400, code: "unknown_input" },
  {
    name: "no inputs for OCR",
    path: "/v2/models/ocr/infer",
    body: infer([]),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "missing second input",
    path: "/v2/models/pair/infer",
    body: infer([{ name: "a", datatype: "FP32", shape: [1], data: [1] }]),
    status: 400,
    code: "missing_input",
  },
  { name: "duplicate input", body: infer([x(), x()]), status: 400, code: "duplicate_input" },
  { name: "wrong datatype", body: infer([x({ datatype: "INT32" })]), status: 400, code: "datatype_mismatch" },
  {
    name: "wrong shape",
    body: infer([x({ shape: [1, 4], data: [1, 2, 3, 4] })]),
    status: 400,
    code: "shape_mismatch",
  },
  { name: "empty batch", body: infer([x({ shape: [0, 3], data: [] })]), status: 400, code: "shape_mismatch" },
  { name: "too few elements", body: infer([x({ data: [1, 2] })]), status: 400, code: "invalid_tensor" },
  {
    name: "string in FP32 data",
    body: infer([x({ data: [1, "two", 3] })]),
    status: 400,
    code: "invalid_tensor",
  },
  { name: "null in data", body: infer([x({ data: [1, null, 3] })]), status: 400, code: "invalid_tensor" },
  {
    name: "string data without content_type",
    body: infer([x({ data: "AAAA" })]),
    status: 400,
    code: "invalid_tensor",
  },
  {
    name: "raw base64 of the wrong size",
    body: infer([x({ data: "AAAAAAAA", parameters: { content_type: "base64" } })]),
    status: 400,
    code: "invalid_tensor",
  },
  {
    name: "unknown content_type",
    body: infer([x({ parameters: { content_type: "xml" } })]),
    status: 400,
    code: "invalid_parameter",
  },
  {
    name: "negative timeout",
    body: infer([x()], { parameters: { timeout: -5 } }),
    status: 400,
    code: "invalid_parameter",
  },
  {
    name: "unknown requested output",
    body: infer([x()], { outputs: [{ name: "nope" }] }),
    status: 400,
    code: "unknown_output",
  },
  {
    name: "Idempotency-Key with a space",
    body: infer([x()]),
    headers: { "idempotency-key": "has space" },
    status: 400,
    code: "invalid_idempotency_key",
  },
  {
    name: "BYTES with numbers",
    path: "/v2/models/text/infer",
    body: infer([{ name: "text", datatype: "BYTES", shape: [1], data: [42] }]),
    status: 400,
    code: "invalid_tensor",
  },
  {
    name: "OCR image of rank 2",
    path: "/v2/models/ocr/infer",
    body: infer([{ name: "image", datatype: "BYTES", shape: [1, 1], data: ["iVBORw0KGgo="] }]),
    status: 400,
    code: "shape_mismatch",
  },
  {
    name: "OCR image that is not base64",
    path: "/v2/models/ocr/infer",
    body: infer([{ name: "image", datatype: "BYTES", shape: [1], data: ["not base64!"] }]),
    status: 400,
    code: "invalid_tensor",
  },
  {
    name: "pipeline without an image input",
    path: "/v2/models/read-line/infer",
    body: infer([x()]),
    status: 400,
    code: "missing_input",
  },
  jsonBodyCase(
    "octet-stream without Inference-Header-Content-Length",
    { "content-type": "application/octet-stream" },
    415,
    "unsupported_media_type",
  ),
  jsonBodyCase(
    "Inference-Header-Content-Length that is not a number",
    { "inference-header-content-length": "twelve" },
    400,
    "invalid_request",
  ),
  jsonBodyCase(
    "Inference-Header-Content-Length past the body",
    { "inference-header-content-length": "100000" },
    400,
    "invalid_request",
  ),
  binaryCase("binary_data_size past the end of the body", 12, "", 400, "invalid_tensor"),
  binaryCase("binary bytes no input claims", 12, "A".repeat(16), 400, "invalid_tensor"),
  binaryCase("binary data of the wrong size for the shape", 8, "A".repeat(8), 400, "invalid_tensor"),
  binaryCase("a negative binary_data_size", -4, "", 400, "invalid_parameter"),
  {
    name: "body over the limit",
    body: infer([x({ shape: [1, 3], data: [1, 2, 3] })], { pad: "x".repeat(BODY_LIMIT) }),
    status: 413,
    code: "body_too_large",
  },
  {
    name: "request id that is not a UUID",
    path: "/v1/requests/abc",
    method: "GET",
    status: 400,
    code: "invalid_request_id",
  },
  {
    name: "unknown request id",
    path: "/v1/requests/5b0f4a1e-3c1d-4d5e-8f00-000000000000",
    method: "GET",
    status: 404,
    code: "request_not_found",
  },
];

describe("malformed requests", () => {
  it(`has at least 15 cases (${cases.length})`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(15);
  });

  it.each(cases)("$name -> $status $code", async (c) => {
    const res = await call(fx.url, c.path ?? "/v2/models/echo/infer", {
      method: c.method ?? (c.body === undefined ? "GET" : "POST"),
      key: KEYS.acme,
      body: c.body,
      headers: c.headers,
    });
    const error = await errorOf(res);
    expect({ status: error.status, code: error.code }).toEqual({ status: c.status, code: c.code });
    expect(error.message.length).toBeGreaterThan(5);
  });

  it("enqueued nothing and reserved nothing for any of them", async () => {
    for (const model of ["echo", "text", "ocr"]) expect(await fx.depth(model)).toBe(0);
    expect(await fx.quota.usage("acme")).toMatchObject({
      requestsThisMinute: 0,
      inFlight: 0,
      tokensToday: 0,
    });
  });

  it("accepts the well-formed variants of the same requests (nested data, raw base64)", async () => {
    const raw = Buffer.from(new Float32Array([1, 2, 3]).buffer).toString("base64");
    const bodies = [
      infer([x({ data: [[1, 2, 3]] })]),
      infer([x({ data: raw, parameters: { content_type: "base64" } })]),
    ];
    for (const body of bodies) {
      const res = await call(fx.url, "/v2/models/echo/infer", {
        key: KEYS.acme,
        body,
        headers: { prefer: "respond-async" },
      });
      expect(res.status).toBe(202);
    }
    expect(await fx.depth("echo")).toBe(2);
  });
});
