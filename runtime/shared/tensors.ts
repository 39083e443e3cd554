/**
 * Tensor codecs shared by the gateway and the worker: Open Inference Protocol JSON data and typed
 * arrays <-> {@link WireTensor} (what travels on a queue) <-> onnxruntime tensors.
 *
 * - Numeric wire data is the little-endian bytes of the typed array: raw in a task
 *   ({@link encodeTensor} with `raw`, framed by task-body.ts), base64-encoded in a result.
 * - BYTES wire data is one base64 string per element (the element's raw bytes).
 * - Decoded BYTES elements are raw `Uint8Array`s; {@link bytesToText} / {@link toJsonData} read them as
 *   UTF-8 text, which is what OIP JSON carries.
 *
 * Every problem with a caller's tensor throws {@link TensorError} (code `invalid_tensor`), whose
 * message names the tensor and says what is wrong, so the gateway can answer 400 with it verbatim.
 */
import { endianness } from "node:os";
import { Tensor as OrtTensor } from "onnxruntime-node";
import { DATATYPES, type Datatype, type WireTensor } from "./contracts/index.js";

/** Datatypes stored as fixed-size numbers (everything except BYTES). */
export type NumericDatatype = Exclude<Datatype, "BYTES">;

/** The typed array that holds each numeric datatype (FP16 as raw IEEE half bits, BOOL as 0/1 bytes). */
export interface TypedArrayOf {
  BOOL: Uint8Array;
  UINT8: Uint8Array;
  INT8: Int8Array;
  INT32: Int32Array;
  INT64: BigInt64Array;
  FP16: Uint16Array;
  FP32: Float32Array;
  FP64: Float64Array;
}
/** Any typed array that holds numeric tensor data. */
export type NumericArray = TypedArrayOf[NumericDatatype];

/** A tensor with its data in memory: a typed array, or raw bytes per element for BYTES. */
export interface DecodedTensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: NumericArray | Uint8Array[];
}

/** Nested JSON arrays as OIP allows them (row-major; flattened before use). */
type Nested<T> = T | Nested<T>[];

/** What {@link encodeTensor} accepts: OIP JSON data (flat or nested), a typed array or raw elements. */
export interface TensorInput {
  name: string;
  datatype: Datatype;
  shape: readonly number[];
  data: NumericArray | Nested<number | bigint | boolean | string>[] | readonly Uint8Array[];
}

/** A wire tensor whose numeric data is base64 text (what results and JSON messages carry). */
export type Base64Tensor = WireTensor & { data: string | string[] };

/** A tensor that cannot be used as given; the message is meant for the caller. */
export class TensorError extends Error {
  readonly code = "invalid_tensor";
  constructor(message: string) {
    super(message);
    this.name = "TensorError";
  }
}

const BYTES_PER_ELEMENT: Record<NumericDatatype, number> = {
  BOOL: 1,
  UINT8: 1,
  INT8: 1,
  INT32: 4,
  INT64: 8,
  FP16: 2,
  FP32: 4,
  FP64: 8,
};

/** onnxruntime's name of each datatype. */
export const ONNX_TYPE = {
  BOOL: "bool",
  UINT8: "uint8",
  INT8: "int8",
  INT32: "int32",
  INT64: "int64",
  FP16: "float16",
  FP32: "float32",
  FP64: "float64",
  BYTES: "string",
} as const satisfies Record<Datatype, OrtTensor.Type>;

const FROM_ONNX_TYPE = new Map<string, Datatype>(
  Object.entries(ONNX_TYPE).map(([d, o]) => [o, d as Datatype]),
);

const INTEGER_RANGE: Partial<Record<NumericDatatype, [number, number]>> = {
  UINT8: [0, 255],
  INT8: [-128, 127],
  INT32: [-2147483648, 2147483647],
};

// The wire format is little-endian bytes; we view typed arrays directly, so refuse big-endian hosts.
const LITTLE_ENDIAN = endianness() === "LE";

/** True for a datatype Turnpike carries. */
export function isDatatype(value: unknown): value is Datatype {
  return typeof value === "string" && (DATATYPES as readonly string[]).includes(value);
}

/** Bytes per element of a numeric datatype; undefined for BYTES (variable length). */
export function bytesPerElement(datatype: Datatype): number | undefined {
  return datatype === "BYTES" ? undefined : BYTES_PER_ELEMENT[datatype];
}

/** Number of elements of a concrete shape ([] is a scalar: 1); throws on a negative or fractional dim. */
export function elementCount(shape: readonly number[]): number {
  let count = 1;
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw new TensorError(`shape [${shape.join(", ")}] has an invalid dimension ${dim}`);
    }
    count *= dim;
  }
  if (!Number.isSafeInteger(count)) throw new TensorError(`shape [${shape.join(", ")}] is too large`);
  return count;
}

/** Raw data size in bytes of a numeric tensor; undefined for BYTES, whose size depends on the data. */
export function byteSize(datatype: Datatype, shape: readonly number[]): number | undefined {
  const width = bytesPerElement(datatype);
  return width === undefined ? undefined : width * elementCount(shape);
}

/**
 * Checks a concrete shape against an expected one where -1 means "any size"; throws a TensorError
 * such as `input x: expected shape [-1, 3, 48, -1], got [1, 48, 320]`.
 */
export function checkShape(actual: readonly number[], expected: readonly number[], label: string): void {
  const fits =
    actual.length === expected.length && expected.every((dim, i) => dim === -1 || dim === actual[i]);
  if (!fits) {
    throw new TensorError(`${label}: expected shape [${expected.join(", ")}], got [${actual.join(", ")}]`);
  }
}

/** Byte size of a wire tensor's payload as it sits on the queue (raw bytes or base64 text). */
export function wireDataLength(wire: WireTensor): number {
  if (typeof wire.data === "string" || wire.data instanceof Uint8Array) return wire.data.length;
  return wire.data.reduce((n, s) => n + s.length, 0);
}

/**
 * Encodes a tensor for the queue. Accepts OIP JSON data (flat or nested numbers, booleans, bigints;
 * strings for BYTES), a typed array, or raw Uint8Array elements for BYTES.
 *
 * @param options.bytes how BYTES strings are read: `utf8` (default, OIP text) or `base64` (the
 *   string already is the base64 of the element's bytes, e.g. a PNG sent in JSON).
 * @param options.raw numeric data stays raw bytes (a view of the typed array, not a copy) instead
 *   of base64: for a task, whose body carries the bytes as they are (task-body.ts).
 */
export function encodeTensor(input: TensorInput, options?: { bytes?: "utf8" | "base64" }): Base64Tensor;
export function encodeTensor(
  input: TensorInput,
  options: { bytes?: "utf8" | "base64"; raw: boolean },
): WireTensor;
export function encodeTensor(
  input: TensorInput,
  options: { bytes?: "utf8" | "base64"; raw?: boolean } = {},
): WireTensor {
  const { name, datatype } = input;
  const shape = [...input.shape];
  if (!isDatatype(datatype)) throw new TensorError(`tensor ${name}: unknown datatype ${String(datatype)}`);
  const count = elementCount(shape);
  if (datatype === "BYTES") {
    const elements = flatten(input.data, name, true);
    if (elements.length !== count) throw countMismatch(name, shape, count, elements.length);
    const data = elements.map((element, i) => encodeBytesElement(element, options.bytes ?? "utf8", name, i));
    return { name, datatype, shape, data };
  }
  const array = toTypedArray(datatype, input.data, name);
  if (array.length !== count) throw countMismatch(name, shape, count, array.length);
  if (!options.raw) return { name, datatype, shape, data: typedToBase64(array) };
  if (!LITTLE_ENDIAN) throw new Error("tensor encoding needs a little-endian host");
  return { name, datatype, shape, data: new Uint8Array(array.buffer, array.byteOffset, array.byteLength) };
}

/** The same tensor with raw numeric bytes as base64 (what JSON carries: results, cache keys). */
export function toBase64Tensor(wire: WireTensor): Base64Tensor {
  if (!(wire.data instanceof Uint8Array)) return wire as Base64Tensor;
  const { data } = wire;
  return { ...wire, data: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64") };
}

/** Decodes a wire tensor into a typed array (or raw BYTES elements), checking datatype, shape and size. */
export function decodeTensor(wire: WireTensor): DecodedTensor {
  const { name, datatype } = wire;
  if (!isDatatype(datatype)) throw new TensorError(`tensor ${name}: unknown datatype ${String(datatype)}`);
  if (!Array.isArray(wire.shape)) throw new TensorError(`tensor ${name}: shape must be an array`);
  const shape = [...wire.shape];
  const count = elementCount(shape);
  if (datatype === "BYTES") {
    if (!Array.isArray(wire.data)) throw new TensorError(`tensor ${name}: BYTES data must be a string array`);
    if (wire.data.length !== count) throw countMismatch(name, shape, count, wire.data.length);
    const data = wire.data.map((element, i) => {
      const bytes = typeof element === "string" ? decodeBase64(element) : undefined;
      if (!bytes) throw new TensorError(`tensor ${name}: element ${i} is not base64`);
      return new Uint8Array(bytes);
    });
    return { name, datatype, shape, data };
  }
  const bytes =
    wire.data instanceof Uint8Array
      ? Buffer.from(wire.data.buffer, wire.data.byteOffset, wire.data.byteLength)
      : typeof wire.data === "string"
        ? decodeBase64(wire.data)
        : undefined;
  if (!bytes)
    throw new TensorError(`tensor ${name}: ${datatype} data must be raw bytes or one base64 string`);
  const expected = count * BYTES_PER_ELEMENT[datatype];
  if (bytes.length !== expected) {
    throw new TensorError(
      `tensor ${name}: ${datatype} [${shape.join(", ")}] needs ${expected} bytes, got ${bytes.length}`,
    );
  }
  return { name, datatype, shape, data: bytesToTyped(datatype, bytes) };
}

/** The UTF-8 text of each element of a decoded BYTES tensor. */
export function bytesToText(tensor: DecodedTensor): string[] {
  if (tensor.datatype !== "BYTES")
    throw new TensorError(`tensor ${tensor.name} is ${tensor.datatype}, not BYTES`);
  return (tensor.data as Uint8Array[]).map((element) => Buffer.from(element).toString("utf8"));
}

/** A BYTES tensor of UTF-8 strings, shape [n] unless given. */
export function textTensor(name: string, texts: readonly string[], shape = [texts.length]): DecodedTensor {
  return { name, datatype: "BYTES", shape, data: texts.map((t) => new Uint8Array(Buffer.from(t, "utf8"))) };
}

/**
 * Flat OIP JSON data of a decoded tensor: numbers (FP16 widened; INT64 as numbers, lossy beyond
 * 2^53), booleans for BOOL, UTF-8 strings for BYTES.
 */
export function toJsonData(tensor: DecodedTensor): (number | boolean | string)[] {
  const { datatype, data } = tensor;
  if (datatype === "BYTES") return bytesToText(tensor);
  if (datatype === "BOOL") return Array.from(data as Uint8Array, (v) => v !== 0);
  if (datatype === "FP16") return Array.from(data as Uint16Array, halfToFloat);
  if (datatype === "INT64") return Array.from(data as BigInt64Array, Number);
  return Array.from(data as Exclude<NumericArray, BigInt64Array>);
}

/** An onnxruntime tensor of a wire or decoded tensor (BYTES elements become UTF-8 strings). */
export function toOnnx(tensor: WireTensor | DecodedTensor): OrtTensor {
  const decoded = isDecoded(tensor) ? tensor : decodeTensor(tensor);
  const type = ONNX_TYPE[decoded.datatype];
  if (decoded.datatype === "BYTES") return new OrtTensor("string", bytesToText(decoded), decoded.shape);
  return new OrtTensor(type, decoded.data as NumericArray, decoded.shape);
}

/** A decoded tensor named `name` from an onnxruntime tensor; unsupported types throw. */
export function fromOnnx(name: string, tensor: OrtTensor): DecodedTensor {
  const datatype = FROM_ONNX_TYPE.get(tensor.type);
  if (!datatype) throw new TensorError(`tensor ${name}: onnxruntime type ${tensor.type} is not supported`);
  const shape = [...tensor.dims];
  if (datatype === "BYTES") {
    const texts = tensor.data as string[];
    return { name, datatype, shape, data: texts.map((t) => new Uint8Array(Buffer.from(t, "utf8"))) };
  }
  return { name, datatype, shape, data: tensor.data as NumericArray };
}

/** Allocates a zero-filled typed array for a numeric datatype. */
export function allocateTyped(datatype: NumericDatatype, length: number): NumericArray {
  switch (datatype) {
    case "BOOL":
    case "UINT8":
      return new Uint8Array(length);
    case "INT8":
      return new Int8Array(length);
    case "INT32":
      return new Int32Array(length);
    case "INT64":
      return new BigInt64Array(length);
    case "FP16":
      return new Uint16Array(length);
    case "FP32":
      return new Float32Array(length);
    case "FP64":
      return new Float64Array(length);
  }
}

/** IEEE 754 half-precision bits of a number (round to nearest even; overflow gives infinity). */
export function floatToHalf(value: number): number {
  const f32 = new Float32Array([value]);
  const bits = new Uint32Array(f32.buffer)[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0); // NaN or infinity
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // too small: signed zero
    mantissa |= 0x800000;
    const shift = 14 - e;
    const half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const midpoint = 1 << (shift - 1);
    return sign | (half + (rest > midpoint || (rest === midpoint && half & 1) ? 1 : 0));
  }
  const half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // Rounding may carry into the exponent, which is still the correctly rounded value.
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && half & 1) ? 1 : 0));
}

/** The number that IEEE 754 half-precision bits stand for. */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

function isDecoded(tensor: WireTensor | DecodedTensor): tensor is DecodedTensor {
  const { data, datatype } = tensor;
  if (typeof data === "string" || (Array.isArray(data) && typeof data[0] === "string")) return false;
  // Raw wire bytes are a Uint8Array; for UINT8 and BOOL the decoded data is the same bytes.
  return !(data instanceof Uint8Array && data.constructor !== Array && bytesPerElement(datatype)! > 1);
}

/** Strict base64: the standard alphabet, padded to a multiple of 4 characters. */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The bytes of `text` when it is strict base64 ({@link BASE64}), else undefined. Node's decoder
 * skips characters outside the alphabet, so such text decodes to fewer bytes than its length and
 * padding promise, but it also reads the URL-safe `-` and `_`: text that decodes to the full
 * length and has neither is what the expression accepts, found without running the expression
 * over every character (a 10 KB PNG: ~33 us for the expression, ~2 us for the decode). Anything
 * else is decided by the expression, as before.
 */
export function decodeBase64(text: string): Buffer | undefined {
  if (text.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(text, "base64");
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  const full = bytes.length === (text.length / 4) * 3 - padding;
  if (full && !text.includes("-") && !text.includes("_")) return bytes;
  return BASE64.test(text) ? bytes : undefined;
}

function countMismatch(name: string, shape: number[], expected: number, got: number): TensorError {
  return new TensorError(
    `tensor ${name}: shape [${shape.join(", ")}] needs ${expected} elements, got ${got}`,
  );
}

/**
 * Flat elements of OIP data. Without `scan`, data whose first element is not an array is taken as
 * flat without looking at all of it (an OCR line is 46,080 numbers); fillTyped flattens it after
 * all if an array turns up further on.
 */
function flatten(data: TensorInput["data"], name: string, scan = false): unknown[] {
  if (ArrayBuffer.isView(data))
    throw new TensorError(`tensor ${name}: BYTES data must be an array of elements`);
  if (!Array.isArray(data)) throw new TensorError(`tensor ${name}: data must be an array`);
  const nested = scan ? data.some(Array.isArray) : Array.isArray(data[0]);
  return nested ? (data as unknown[]).flat(Infinity) : (data as unknown[]);
}

function encodeBytesElement(element: unknown, mode: "utf8" | "base64", name: string, i: number): string {
  if (element instanceof Uint8Array)
    return Buffer.from(element.buffer, element.byteOffset, element.length).toString("base64");
  if (typeof element !== "string") throw new TensorError(`tensor ${name}: element ${i} must be a string`);
  if (mode === "utf8") return Buffer.from(element, "utf8").toString("base64");
  if (!decodeBase64(element)) throw new TensorError(`tensor ${name}: element ${i} is not valid base64`);
  return element;
}

function toTypedArray(datatype: NumericDatatype, data: TensorInput["data"], name: string): NumericArray {
  if (ArrayBuffer.isView(data)) {
    const expected = allocateTyped(datatype, 0);
    if (data.constructor === expected.constructor) return data as NumericArray;
    // A different typed array (e.g. a Float64Array for FP32): convert value by value below.
    return fillTyped(datatype, Array.from(data as ArrayLike<number | bigint>), name);
  }
  return fillTyped(datatype, flatten(data, name), name);
}

function fillTyped(datatype: NumericDatatype, values: readonly unknown[], name: string): NumericArray {
  const out = allocateTyped(datatype, values.length);
  // Float tensors (an image as FP32 is ~150k numbers) take a tight loop: no per-element closure or
  // datatype branches; 10x faster, and the first element that is not a number falls to the full loop.
  if (datatype === "FP32" || datatype === "FP64") {
    const floats = out as Float32Array | Float64Array;
    let i = 0;
    for (; i < values.length; i++) {
      const value = values[i];
      if (typeof value !== "number" || Number.isNaN(value)) break;
      floats[i] = value;
    }
    if (i === values.length) return out;
  }
  const range = INTEGER_RANGE[datatype];
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (Array.isArray(value)) return fillTyped(datatype, values.flat(Infinity), name);
    const bad = (what: string) =>
      new TensorError(`tensor ${name}: element ${i} (${String(value)}) ${what} for ${datatype}`);
    if (datatype === "BOOL") {
      if (value !== true && value !== false && value !== 0 && value !== 1) throw bad("is not a boolean");
      (out as Uint8Array)[i] = value === true || value === 1 ? 1 : 0;
    } else if (datatype === "INT64") {
      if (typeof value === "bigint") (out as BigInt64Array)[i] = BigInt.asIntN(64, value);
      else if (typeof value === "number" && Number.isSafeInteger(value))
        (out as BigInt64Array)[i] = BigInt(value);
      else throw bad("is not a safe integer");
    } else {
      const number = typeof value === "bigint" ? Number(value) : value;
      if (typeof number !== "number" || Number.isNaN(number)) throw bad("is not a number");
      if (range) {
        if (!Number.isInteger(number) || number < range[0] || number > range[1]) throw bad("is out of range");
      }
      (out as Exclude<NumericArray, BigInt64Array>)[i] = datatype === "FP16" ? floatToHalf(number) : number;
    }
  }
  return out;
}

function typedToBase64(array: NumericArray): string {
  if (!LITTLE_ENDIAN) throw new Error("tensor encoding needs a little-endian host");
  return Buffer.from(array.buffer, array.byteOffset, array.byteLength).toString("base64");
}

function bytesToTyped(datatype: NumericDatatype, bytes: Buffer): NumericArray {
  if (!LITTLE_ENDIAN) throw new Error("tensor decoding needs a little-endian host");
  // Copy into a fresh buffer: Buffer.from() may return an unaligned slice of Node's pool.
  const out = allocateTyped(datatype, bytes.length / BYTES_PER_ELEMENT[datatype]);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}
