/**
 * What each model task accepts and returns at the API level, and how its tokens are counted. The
 * gateway validates requests against it before anything is enqueued; the worker uses the same
 * signature to decide how to prepare a request (e.g. decode a PNG) and to count tokens, so both
 * sides agree by construction.
 *
 * - `ocr-recognition`: either `image` BYTES [n] (one PNG per text line; in OIP JSON each element is
 *   the base64 of the PNG, so encode it with `encodeTensor(..., { bytes: "base64" })`) or the raw
 *   model input `x` FP32 [n, 3, 48, w]. Returns `text` BYTES [n] and `confidence` FP32 [n]. Output
 *   tokens = decoded characters (Unicode code points) per `tokens.charactersPerToken` (default 1),
 *   whatever `tokens.mode` says; input tokens = 0.
 * - `generic` (and, in this build, `ocr-detection`, `text-embedding`, `voice-activity`, which have no
 *   task-specific pre/post-processing yet): the model's own inputs and outputs, from the config's
 *   `inputs`/`outputs` or else the ONNX model's metadata. Output tokens follow `tokens.mode`.
 */
import { type Datatype, type WireTensor, type ModelConfig, type TensorSpec } from "../contracts/index.js";
import { bytesToText, checkShape, elementCount, TensorError, type DecodedTensor } from "../tensors.js";

/** One tensor of a signature; -1 in `shape` is a dimension of any size. */
export interface TensorSignature {
  name: string;
  datatype: Datatype;
  shape: number[];
  /** What the tensor holds, for humans (shown in errors and model metadata). */
  description?: string;
  /** For BYTES inputs whose OIP JSON strings are base64 of binary data (e.g. a PNG), not text. */
  contentEncoding?: "base64";
}

/** One accepted set of inputs; a request must match exactly one variant of its model. */
export interface InputVariant {
  /** Short id, e.g. "image" or "tensor" for OCR, "model" for generic models. */
  id: string;
  tensors: TensorSignature[];
}

/** The API-level contract of one model. */
export interface TaskSignature {
  model: string;
  task: ModelConfig["task"];
  /** Empty when the inputs are not known (generic model without metadata): accept any tensors. */
  inputVariants: InputVariant[];
  /** Undefined when the outputs are not known up front. */
  outputs?: TensorSignature[];
  /** Rule for output tokens: `characters` of text outputs, a `fixed` unit, or a `tokenizer`. */
  outputTokens: "characters" | "fixed" | "tokenizer";
  /** Output tokens to reserve per request before the real count is known. */
  maxOutputTokens: number;
  /** Whether requests may carry several items along dimension 0 (and be batched with others). */
  batchable: boolean;
}

/** The model's tensors as the ONNX file declares them (the worker reads them from the session). */
export interface ModelTensors {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

/** Height of PP-OCR recognition inputs. */
const OCR_HEIGHT = 48;

/** Builds the signature of `model`; `onnx` fills in a generic model's tensors when the config has none. */
export function taskSignature(model: ModelConfig, onnx?: ModelTensors): TaskSignature {
  const base = { model: model.name, task: model.task, maxOutputTokens: model.tokens.maxOutputTokens };
  if (model.task === "ocr-recognition") {
    return {
      ...base,
      inputVariants: [
        {
          id: "image",
          tensors: [
            {
              name: "image",
              datatype: "BYTES",
              shape: [-1],
              description: "one PNG image of a text line per element (base64 in JSON)",
              contentEncoding: "base64",
            },
          ],
        },
        {
          id: "tensor",
          tensors: [
            {
              name: onnx?.inputs[0]?.name ?? "x",
              datatype: "FP32",
              shape: [-1, 3, OCR_HEIGHT, -1],
              description: "normalized BGR line images, NCHW, values in [-1, 1]",
            },
          ],
        },
      ],
      outputs: [
        { name: "text", datatype: "BYTES", shape: [-1], description: "recognized text per line" },
        { name: "confidence", datatype: "FP32", shape: [-1], description: "mean character probability" },
      ],
      outputTokens: "characters",
      batchable: true,
    };
  }
  const inputs = model.inputs ?? onnx?.inputs;
  const outputs = model.outputs ?? onnx?.outputs;
  return {
    ...base,
    inputVariants: inputs
      ? [{ id: "model", tensors: inputs.map((t) => ({ ...t, shape: [...t.shape] })) }]
      : [],
    outputs: outputs?.map((t) => ({ ...t, shape: [...t.shape] })),
    outputTokens: model.tokens.mode,
    batchable: inputs !== undefined && inputs.length > 0 && inputs.every((t) => t.shape[0] === -1),
  };
}

/** Shape and type of a request tensor; both WireTensor and DecodedTensor fit. */
type TensorHeader = Pick<WireTensor, "name" | "datatype" | "shape">;

/** Options of {@link matchInputs}. */
export interface MatchOptions {
  /**
   * Accept a single tensor under another name when the variant takes exactly one tensor of that
   * datatype: the worker uses this to feed one step's output into the next step of a pipeline.
   */
  positional?: boolean;
}

/**
 * Finds the input variant that `inputs` match (names, datatypes, shapes), or throws a TensorError
 * that lists what the model accepts. With `positional`, a lone tensor is renamed to fit.
 */
export function matchInputs(
  signature: TaskSignature,
  inputs: readonly TensorHeader[],
  options: MatchOptions = {},
): { variant: InputVariant | undefined; names: Map<string, string> } {
  if (inputs.length === 0) throw new TensorError(`model ${signature.model} needs at least one input tensor`);
  const seen = new Set<string>();
  for (const input of inputs) {
    if (seen.has(input.name)) throw new TensorError(`input ${input.name} is given twice`);
    seen.add(input.name);
  }
  if (signature.inputVariants.length === 0) {
    return { variant: undefined, names: new Map(inputs.map((i) => [i.name, i.name])) };
  }
  const problems: string[] = [];
  for (const variant of signature.inputVariants) {
    const names = bindNames(variant, inputs, options.positional === true);
    if (!names) continue;
    try {
      for (const input of inputs) checkInput(signature, variant, names.get(input.name)!, input);
      return { variant, names };
    } catch (error) {
      if (!(error instanceof TensorError)) throw error;
      problems.push(error.message);
    }
  }
  if (problems.length > 0) throw new TensorError(problems.join("; "));
  const accepted = signature.inputVariants.map((v) => `{${v.tensors.map(describe).join(", ")}}`);
  throw new TensorError(
    `model ${signature.model} accepts ${accepted.join(" or ")}; got {${inputs.map(describe).join(", ")}}`,
  );
}

/** Maps each request tensor name to the variant's tensor name, or undefined if they do not fit. */
function bindNames(
  variant: InputVariant,
  inputs: readonly TensorHeader[],
  positional: boolean,
): Map<string, string> | undefined {
  const wanted = new Set(variant.tensors.map((t) => t.name));
  if (inputs.length === wanted.size && inputs.every((i) => wanted.has(i.name))) {
    return new Map(inputs.map((i) => [i.name, i.name]));
  }
  const only = variant.tensors[0];
  const input = inputs[0];
  if (positional && variant.tensors.length === 1 && inputs.length === 1 && only && input) {
    if (only.datatype === input.datatype) return new Map([[input.name, only.name]]);
  }
  return undefined;
}

function checkInput(
  signature: TaskSignature,
  variant: InputVariant,
  name: string,
  input: TensorHeader,
): void {
  const spec = variant.tensors.find((t) => t.name === name)!;
  const label = `input ${input.name}`;
  if (input.datatype !== spec.datatype) {
    throw new TensorError(`${label}: expected datatype ${spec.datatype}, got ${input.datatype}`);
  }
  checkShape(input.shape, spec.shape, label);
  if (signature.batchable && spec.shape[0] === -1 && input.shape[0] === 0) {
    throw new TensorError(`${label}: needs at least one item along dimension 0`);
  }
  elementCount(input.shape);
}

function describe(t: TensorHeader): string {
  return `${t.name} ${t.datatype} [${t.shape.join(", ")}]`;
}

/** Number of Unicode code points, the "characters" Turnpike charges for. */
export function countCharacters(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

/**
 * Output tokens of one request's finished outputs under the model's rule:
 * - OCR recognition, and `characters` mode: code points of every BYTES output read as UTF-8 text,
 *   divided by `tokens.charactersPerToken` and rounded up (1 by default: one token per character);
 * - `fixed`: `unitsPerRequest`;
 * - `tokenizer`: this build has no real tokenizer, so also `unitsPerRequest` (the worker warns).
 * `tokens.perRequest` is not added here: it is known up front, so the gateway charges it with the
 * input tokens (in `fixed` mode the operator already renders it as `unitsPerRequest`).
 */
export function countOutputTokens(model: ModelConfig, outputs: readonly DecodedTensor[]): number {
  if (model.task === "ocr-recognition" || model.tokens.mode === "characters") {
    let count = 0;
    for (const output of outputs) {
      if (output.datatype !== "BYTES") continue;
      for (const text of bytesToText(output)) count += countCharacters(text);
    }
    return Math.ceil(count / model.tokens.charactersPerToken);
  }
  return model.tokens.unitsPerRequest;
}
