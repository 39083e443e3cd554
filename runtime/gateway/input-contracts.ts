/**
 * What the first step of a route accepts, checked on tensor headers (name, datatype, shape) before
 * any data is decoded, pure. A model is checked against its task signature (shared with the worker,
 * so both sides agree); a built-in processor against the contract below, which mirrors how the
 * processor picks its input (the tensor of that name, else the only one of that datatype).
 * Each check returns the names of BYTES inputs whose JSON strings are base64 of binary data.
 */
import type { Datatype } from "../shared/contracts/index.js";
import type { InputVariant, TaskSignature, TensorSignature } from "../shared/models/task-signature.js";
import { ApiError } from "./errors.js";

/** Name, datatype and shape of a request tensor. */
export interface TensorHeader {
  name: string;
  datatype: Datatype;
  shape: number[];
}

/** Validates the request's tensor headers; returns the BYTES inputs that carry base64 binary data. */
export type InputCheck = (inputs: readonly TensorHeader[]) => ReadonlySet<string>;

/** Accepts anything (a model whose inputs are not known up front). */
export const anyInputs: InputCheck = () => new Set();

/** The check for a model: its inputs must match exactly one variant of its signature. */
export function modelInputCheck(signature: TaskSignature): InputCheck {
  if (signature.inputVariants.length === 0) return anyInputs;
  return (inputs) => {
    const failures = signature.inputVariants.map((v) => checkVariant(signature, v, inputs));
    const index = failures.findIndex((f) => f === undefined);
    if (index >= 0) {
      const variant = signature.inputVariants[index]!;
      return new Set(variant.tensors.filter((t) => t.contentEncoding === "base64").map((t) => t.name));
    }
    // Prefer the complaint of a variant whose names fit (a datatype or shape problem) over "unknown input".
    const specific = failures.find((f) => f && f.code !== "unknown_input" && f.code !== "missing_input");
    if (specific || signature.inputVariants.length === 1) {
      const { code, message } = specific ?? failures[0]!;
      throw new ApiError(code, message);
    }
    const accepted = signature.inputVariants
      .map((v) => `{${v.tensors.map(describe).join(", ")}}`)
      .join(" or ");
    throw new ApiError(
      failures[0]!.code,
      `${signature.model} accepts ${accepted}; got {${inputs.map(describe).join(", ")}}`,
    );
  };
}

/** Why a variant does not fit; a plain object, as a stack trace per variant tried costs ~0.1 ms. */
interface Refusal {
  code: "unknown_input" | "datatype_mismatch" | "shape_mismatch" | "missing_input";
  message: string;
}

function checkVariant(
  signature: TaskSignature,
  variant: InputVariant,
  inputs: readonly TensorHeader[],
): Refusal | undefined {
  const byName = new Map(variant.tensors.map((t) => [t.name, t]));
  for (const input of inputs) {
    const spec = byName.get(input.name);
    if (!spec) {
      const names = variant.tensors.map((t) => t.name).join(", ");
      return {
        code: "unknown_input",
        message: `input ${input.name} is not an input of ${signature.model}; expected ${names}`,
      };
    }
    if (spec.datatype !== input.datatype) {
      return {
        code: "datatype_mismatch",
        message: `input ${input.name}: expected datatype ${spec.datatype}, got ${input.datatype}`,
      };
    }
    const fits =
      input.shape.length === spec.shape.length &&
      spec.shape.every((d, i) => d === -1 || d === input.shape[i]);
    if (!fits) {
      return {
        code: "shape_mismatch",
        message: `input ${input.name}: expected shape [${spec.shape.join(", ")}] (-1 is any size), got [${input.shape.join(", ")}]`,
      };
    }
    if (signature.batchable && spec.shape[0] === -1 && input.shape[0] === 0) {
      return {
        code: "shape_mismatch",
        message: `input ${input.name}: needs at least one item along dimension 0`,
      };
    }
  }
  const given = new Set(inputs.map((i) => i.name));
  const missing = variant.tensors.filter((t) => !given.has(t.name)).map((t) => t.name);
  if (missing.length > 0)
    return {
      code: "missing_input",
      message: `missing input(s): ${missing.join(", ")}`,
    };
  return undefined;
}

function describe(t: TensorHeader | TensorSignature): string {
  return `${t.name} ${t.datatype} [${t.shape.join(", ")}]`;
}

/** What a built-in processor takes: one tensor, found by name or as the only one of its datatype. */
export interface ProcessorContract {
  input: string;
  datatype: Datatype;
  /** Accepted ranks; any (at least 1) when omitted. */
  ranks?: readonly number[];
  /** BYTES strings are base64 of binary data (e.g. PNG files). */
  base64?: boolean;
}

/** Contracts of the processors the worker ships (runtime/worker/processors), by name. */
export const PROCESSOR_CONTRACTS: Readonly<Record<string, ProcessorContract>> = {
  "image-to-tensor": { input: "image", datatype: "BYTES", ranks: [1], base64: true },
  tokenize: { input: "text", datatype: "BYTES", ranks: [1] },
  "ctc-decode": { input: "probabilities", datatype: "FP32", ranks: [3] },
  "softmax-argmax": { input: "logits", datatype: "FP32" },
};

/** The check for a route whose first step is processor `name` (unknown processors: structure only). */
export function processorInputCheck(name: string): InputCheck {
  const contract = PROCESSOR_CONTRACTS[name];
  if (!contract) return anyInputs;
  return (inputs) => {
    const label = `the first step (processor ${name})`;
    const named = inputs.find((t) => t.name === contract.input);
    const typed = inputs.filter((t) => t.datatype === contract.datatype);
    const input = named ?? (typed.length === 1 ? typed[0] : undefined);
    if (!input) {
      throw new ApiError(
        "missing_input",
        `${label} needs a ${contract.datatype} tensor named ${contract.input} (or exactly one ${contract.datatype} tensor)`,
      );
    }
    if (input.datatype !== contract.datatype) {
      throw new ApiError(
        "datatype_mismatch",
        `input ${input.name}: ${label} expects datatype ${contract.datatype}, got ${input.datatype}`,
      );
    }
    const rankOk = contract.ranks ? contract.ranks.includes(input.shape.length) : input.shape.length >= 1;
    if (!rankOk) {
      throw new ApiError(
        "shape_mismatch",
        `input ${input.name}: ${label} expects ${contract.ranks?.join(" or ") ?? "at least 1"} dimension(s), got [${input.shape.join(", ")}]`,
      );
    }
    return new Set(contract.base64 ? [input.name] : []);
  };
}
