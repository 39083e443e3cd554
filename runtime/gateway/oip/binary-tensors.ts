/**
 * The Open Inference Protocol's binary tensor data extension, both ways, pure (no I/O).
 *
 * Request: the body is a JSON header of `Inference-Header-Content-Length` bytes, then the raw data
 * of each input whose `parameters.binary_data_size` is set, in the order of `inputs`. Numeric
 * tensors are their little-endian element bytes; BYTES tensors are, per element, a 4-byte
 * little-endian length and the element's bytes. {@link inlineBinaryInputs} turns such inputs back
 * into the forms infer-request.ts already validates (the raw bytes for numbers, as the task carries
 * them; base64 for binary elements, text for UTF-8 elements), so both forms share one validation
 * path.
 *
 * Response: outputs asked for as binary (`parameters.binary_data_output` for all, or an output's
 * own `parameters.binary_data`, which wins) carry `parameters.binary_data_size` instead of `data`,
 * and their bytes follow the JSON header in the same layout; {@link encodeBinaryResponse} builds it.
 */
import type { WireTensor } from "../../shared/contracts/index.js";
import { decodeTensor, TensorError } from "../../shared/tensors.js";
import { ApiError } from "../errors.js";

/** The request header that gives the JSON header's length in a binary body (also sent back). */
export const HEADER_LENGTH_HEADER = "inference-header-content-length";

/** An infer body that came with binary tensor data: the parsed JSON header and the bytes after it. */
export class BinaryInferBody {
  constructor(
    readonly json: unknown,
    readonly binary: Buffer,
  ) {}
}

/** Splits a raw body at `headerLength` (the header's value); `parseJson` parses the JSON part. */
export function splitBinaryBody(
  raw: Buffer,
  headerLength: string,
  parseJson: (text: string) => unknown,
): BinaryInferBody {
  const length = /^\d{1,12}$/.test(headerLength.trim()) ? Number(headerLength) : NaN;
  if (!Number.isSafeInteger(length) || length < 1 || length > raw.length) {
    throw new ApiError(
      "invalid_request",
      `Inference-Header-Content-Length must be a whole number of bytes from 1 to the body's ${raw.length}, got ${JSON.stringify(headerLength)}`,
    );
  }
  return new BinaryInferBody(parseJson(raw.subarray(0, length).toString("utf8")), raw.subarray(length));
}

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

type JsonObject = Record<string, unknown>;

const isObject = (value: unknown): value is JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Replaces the binary data of inputs that declare `binary_data_size` with JSON data: numeric
 * tensors keep their bytes (a Buffer, content_type "base64" marking them binary); BYTES tensors become an array of
 * strings, UTF-8 text when every element is valid UTF-8 (so text models count its characters),
 * base64 otherwise. Throws 400 when the sizes and the bytes after the header disagree.
 */
export function inlineBinaryInputs(body: BinaryInferBody): unknown {
  const { json, binary } = body;
  if (!isObject(json) || !Array.isArray(json.inputs)) return json; // infer-request.ts says what is wrong
  let offset = 0;
  const inputs = json.inputs.map((input: unknown, index) => {
    if (!isObject(input) || !isObject(input.parameters) || input.parameters.binary_data_size === undefined) {
      return input;
    }
    const { binary_data_size: size, ...parameters } = input.parameters;
    const name = typeof input.name === "string" ? input.name : `#${index}`;
    if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
      throw new ApiError(
        "invalid_parameter",
        `input ${name}: binary_data_size must be a whole number of bytes >= 0`,
      );
    }
    if (input.data !== undefined) {
      throw new ApiError("invalid_request", `input ${name}: give either data or binary_data_size, not both`);
    }
    if (offset + size > binary.length) {
      throw new ApiError(
        "invalid_tensor",
        `input ${name}: binary_data_size ${size} goes past the end of the binary data (${binary.length - offset} bytes left)`,
      );
    }
    const bytes = binary.subarray(offset, offset + size);
    offset += size;
    if (input.datatype !== "BYTES") {
      return { ...input, data: bytes, parameters: { ...parameters, content_type: "base64" } };
    }
    const elements = splitBytesElements(bytes, name);
    const texts = elements.map(utf8OrUndefined);
    const allText = texts.every((t) => t !== undefined);
    return {
      ...input,
      data: allText ? texts : elements.map((e) => e.toString("base64")),
      parameters: { ...parameters, content_type: allText ? "str" : "base64" },
    };
  });
  if (offset !== binary.length) {
    throw new ApiError(
      "invalid_tensor",
      `the body has ${binary.length - offset} bytes after the inputs' binary_data_size that no input claims`,
    );
  }
  return { ...json, inputs };
}

/** Which outputs the caller wants as binary data (`binary_data` per output beats `binary_data_output`). */
export function binaryOutputs(json: unknown): (name: string) => boolean {
  if (!isObject(json)) return () => false;
  const all = isObject(json.parameters) && json.parameters.binary_data_output === true;
  const own = new Map<string, boolean>();
  for (const output of Array.isArray(json.outputs) ? json.outputs : []) {
    if (isObject(output) && typeof output.name === "string" && isObject(output.parameters)) {
      const flag = output.parameters.binary_data;
      if (typeof flag === "boolean") own.set(output.name, flag);
    }
  }
  return (name) => own.get(name) ?? all;
}

/** Removes the extension's own parameters so they are not forwarded to the worker. */
export function withoutBinaryParameters(json: unknown): unknown {
  if (!isObject(json) || !isObject(json.parameters) || !("binary_data_output" in json.parameters))
    return json;
  const { binary_data_output: _ignored, ...parameters } = json.parameters;
  return { ...json, parameters };
}

/** A JSON OIP output tensor, or its binary form's header (data follows the JSON). */
export interface ResponseTensor {
  name: string;
  datatype: string;
  shape: number[];
  data?: unknown[];
  parameters?: Record<string, unknown>;
}

/**
 * The body of a response whose `binaryNames` outputs go as binary data: the JSON header (those
 * outputs without `data`, with `binary_data_size`) and their bytes; `headerLength` is the value of
 * Inference-Header-Content-Length. `response.outputs` must be in the order of `wire`.
 */
export function encodeBinaryResponse(
  response: { outputs: readonly ResponseTensor[] },
  wire: readonly WireTensor[],
  isBinary: (name: string) => boolean,
): { body: Buffer; headerLength: number } | undefined {
  const chunks: Buffer[] = [];
  let any = false;
  const outputs = response.outputs.map((output) => {
    if (!isBinary(output.name)) return output;
    const tensor = wire.find((w) => w.name === output.name);
    if (!tensor) return output;
    any = true;
    const bytes = tensorBytes(tensor);
    chunks.push(bytes);
    const { data: _data, ...rest } = output;
    return { ...rest, parameters: { ...output.parameters, binary_data_size: bytes.length } };
  });
  if (!any) return undefined;
  const header = Buffer.from(JSON.stringify({ ...response, outputs }), "utf8");
  return { body: Buffer.concat([header, ...chunks]), headerLength: header.length };
}

/** The raw bytes of a wire tensor in the extension's layout. */
export function tensorBytes(wire: WireTensor): Buffer {
  const decoded = decodeTensor(wire);
  if (decoded.datatype !== "BYTES") {
    const data = decoded.data as ArrayBufferView;
    return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  }
  const elements = decoded.data as Uint8Array[];
  const out = Buffer.alloc(elements.reduce((n, e) => n + 4 + e.length, 0));
  let offset = 0;
  for (const element of elements) {
    out.writeUInt32LE(element.length, offset);
    out.set(element, offset + 4);
    offset += 4 + element.length;
  }
  return out;
}

/** The elements of a BYTES tensor's binary data (4-byte little-endian length, then the bytes). */
export function splitBytesElements(bytes: Buffer, name: string): Buffer[] {
  const elements: Buffer[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (offset + 4 > bytes.length) {
      throw new TensorError(`input ${name}: BYTES binary data ends inside an element's 4-byte length`);
    }
    const length = bytes.readUInt32LE(offset);
    if (offset + 4 + length > bytes.length) {
      throw new TensorError(
        `input ${name}: BYTES element ${elements.length} claims ${length} bytes, only ${bytes.length - offset - 4} left`,
      );
    }
    elements.push(bytes.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length;
  }
  return elements;
}

function utf8OrUndefined(bytes: Buffer): string | undefined {
  try {
    return UTF8.decode(bytes);
  } catch {
    return undefined;
  }
}
