/**
 * Parsing and validation of an Open Inference Protocol v2 infer body, pure (no I/O): the shape of
 * the JSON, then names/datatypes/shapes against what the route's first step accepts
 * (input-contracts.ts), then the data itself, encoded into wire tensors. Every problem is a 4xx
 * ApiError with a stable code.
 *
 * Binary inputs: a BYTES input whose `parameters.content_type` is "base64" carries each element as
 * base64 of the raw bytes (e.g. a PNG); inputs the model declares as binary (the OCR `image`)
 * are read that way without the parameter. A numeric input with content_type "base64" carries one
 * base64 string of the little-endian raw tensor bytes instead of a JSON number array.
 */
import { z } from "zod";
import { DATATYPES, type Datatype, type WireTensor } from "../shared/contracts/index.js";
import { byteSize, decodeBase64, elementCount, encodeTensor, TensorError } from "../shared/tensors.js";
import { countCharacters } from "../shared/models/task-signature.js";
import { ApiError } from "./errors.js";
import { anyInputs, type InputCheck } from "./input-contracts.js";

const MAX_TENSORS = 64;
const MAX_RANK = 8;

const parametersSchema = z.record(z.string(), z.unknown());

const inputSchema = z.object({
  name: z.string().min(1).max(256),
  datatype: z.string(),
  shape: z.array(z.number().int().min(0)).max(MAX_RANK),
  // Checked for its kind only: z.array(z.unknown()) would copy every element (3 ms for an OCR
  // line's 46,080 numbers); encodeTensor checks each element once anyway.
  // (Raw bytes come from the binary tensor extension, oip/binary-tensors.ts, never from JSON; an
  // FP32 or FP64 input's typed array is its long number array, read by oip/number-runs.ts.)
  data: z.custom<unknown[] | string | Uint8Array | Float32Array | Float64Array>(
    (v) =>
      Array.isArray(v) ||
      typeof v === "string" ||
      v instanceof Uint8Array ||
      v instanceof Float32Array ||
      v instanceof Float64Array,
    { message: "must be an array, or a string of base64" },
  ),
  parameters: parametersSchema.optional(),
});

const bodySchema = z.object({
  id: z.string().max(256).optional(),
  inputs: z.array(inputSchema).min(1).max(MAX_TENSORS),
  parameters: parametersSchema.optional(),
  outputs: z
    .array(z.object({ name: z.string().min(1).max(256), parameters: parametersSchema.optional() }))
    .max(MAX_TENSORS)
    .optional(),
});

/** One validated input, encoded for the queue. */
export interface ParsedInput {
  name: string;
  datatype: Datatype;
  shape: number[];
  /** True when the content was sent as base64 (binary), false for JSON numbers or UTF-8 text. */
  binary: boolean;
  /** Unicode characters of a UTF-8 text BYTES input (0 otherwise): the `characters` token basis. */
  characters: number;
  wire: WireTensor;
}

/** A validated infer request. */
export interface ParsedInferRequest {
  /** The caller's own `id`, echoed in the answer. */
  clientId?: string;
  inputs: ParsedInput[];
  /** Parameters forwarded to the worker (the gateway's own `timeout` removed). */
  parameters: Record<string, unknown>;
  /** Names of the outputs the caller asked for; all when undefined. */
  outputs?: string[];
  /** Requested synchronous wait in ms (`parameters.timeout`). */
  timeoutMs?: number;
}

/** Parses an infer body; `check` validates the tensor headers against the route's first step. */
export function parseInferRequest(body: unknown, check: InputCheck = anyInputs): ParsedInferRequest {
  if (body === undefined || body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new ApiError("invalid_request", "the body must be a JSON object with an `inputs` array");
  }
  const parsed = bodySchema.safeParse(body);
  if (!parsed.success) throw new ApiError("invalid_request", describeIssues(parsed.error));
  const request = parsed.data;

  const { timeout, ...parameters } = request.parameters ?? {};
  let timeoutMs: number | undefined;
  if (timeout !== undefined) {
    if (typeof timeout !== "number" || !Number.isInteger(timeout) || timeout < 0) {
      throw new ApiError(
        "invalid_parameter",
        "parameters.timeout must be a whole number of milliseconds >= 0",
      );
    }
    timeoutMs = timeout;
  }

  const seen = new Set<string>();
  for (const input of request.inputs) {
    if (seen.has(input.name))
      throw new ApiError("duplicate_input", `input ${input.name} is given more than once`);
    seen.add(input.name);
    if (!(DATATYPES as readonly string[]).includes(input.datatype)) {
      throw new ApiError(
        "invalid_tensor",
        `input ${input.name}: unknown datatype ${JSON.stringify(input.datatype)}; use one of ${DATATYPES.join(", ")}`,
      );
    }
  }
  const binaryInputs = check(request.inputs as RawInput[]);

  const inputs = request.inputs.map((input) => encodeInput(input as RawInput, binaryInputs.has(input.name)));
  return {
    clientId: request.id,
    inputs,
    parameters,
    outputs: request.outputs?.map((o) => o.name),
    timeoutMs,
  };
}

type RawInput = z.infer<typeof inputSchema> & { datatype: Datatype };

function encodeInput(input: RawInput, declaredBinary: boolean): ParsedInput {
  const contentType = input.parameters?.content_type;
  if (contentType !== undefined && !["base64", "str", "utf8", "raw"].includes(String(contentType))) {
    throw new ApiError(
      "invalid_parameter",
      `input ${input.name}: content_type must be "base64" (binary) or "str" (text), got ${JSON.stringify(contentType)}`,
    );
  }
  // A declared-binary input is base64 unless the caller says it sends text (the worker takes both).
  const binary =
    contentType === "base64" || (contentType === undefined && declaredBinary && input.datatype === "BYTES");
  const base = { name: input.name, datatype: input.datatype, shape: input.shape, binary };
  try {
    if (input.datatype !== "BYTES" && input.data instanceof Uint8Array) {
      return { ...base, characters: 0, wire: rawBytesTensor({ ...input, data: input.data }) };
    }
    if (input.data instanceof Uint8Array) {
      throw new TensorError(`input ${input.name}: BYTES data must be an array of strings`);
    }
    if (input.datatype !== "BYTES" && typeof input.data === "string") {
      if (!binary) {
        throw new TensorError(
          `input ${input.name}: data is a string; send numbers, or base64 with content_type "base64"`,
        );
      }
      return { ...base, characters: 0, wire: rawNumericTensor({ ...input, data: input.data }) };
    }
    if (typeof input.data === "string") {
      throw new TensorError(`input ${input.name}: BYTES data must be an array of strings`);
    }
    // Raw bytes: the task carries them as they are (runtime/shared/task-body.ts), not as base64.
    const wire = encodeTensor(
      { name: input.name, datatype: input.datatype, shape: input.shape, data: input.data as never },
      { bytes: binary ? "base64" : "utf8", raw: true },
    );
    const characters =
      input.datatype === "BYTES" && !binary
        ? ((input.data as unknown[]).flat(Infinity) as string[]).reduce((n, s) => n + countCharacters(s), 0)
        : 0;
    return { ...base, characters, wire };
  } catch (error) {
    if (error instanceof TensorError)
      throw new ApiError("invalid_tensor", prefixed(input.name, error.message));
    throw error;
  }
}

/** A numeric tensor sent as binary data (the OIP extension): checked for size only, carried as is. */
function rawBytesTensor(input: RawInput & { data: Uint8Array }): WireTensor {
  const expected = byteSize(input.datatype, input.shape)!;
  if (input.data.length !== expected) {
    throw new TensorError(
      `input ${input.name}: ${input.datatype} [${input.shape.join(", ")}] needs ${expected} bytes, got ${input.data.length}`,
    );
  }
  return { name: input.name, datatype: input.datatype, shape: input.shape, data: input.data };
}

/** A numeric tensor sent as one base64 string of little-endian bytes: checked for size only. */
function rawNumericTensor(input: RawInput & { data: string }): WireTensor {
  const expected = byteSize(input.datatype, input.shape)!;
  elementCount(input.shape);
  const data = decodeBase64(input.data);
  if (!data) throw new TensorError(`input ${input.name}: data is not valid base64`);
  if (data.length !== expected) {
    throw new TensorError(
      `input ${input.name}: ${input.datatype} [${input.shape.join(", ")}] needs ${expected} bytes, got ${data.length}`,
    );
  }
  return { name: input.name, datatype: input.datatype, shape: input.shape, data };
}

function prefixed(name: string, message: string): string {
  return message.startsWith(`input ${name}`) || message.includes(`tensor ${name}`)
    ? message
    : `input ${name}: ${message}`;
}

/** The first few zod issues as one readable sentence, with their JSON paths. */
function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? i.path.join(".") : "body"}: ${i.message}`)
    .join("; ");
}
