/** The contract of a built-in processor: a pure function over one request's tensors. */
import { TensorError, type DecodedTensor } from "../../shared/tensors.js";

/** What a processor may need beyond its inputs. */
export interface ProcessorContext {
  /**
   * Character dictionary for CTC decoding: the one at `uri` (a model uri, from trusted settings
   * only), else the worker's default. Loaded lazily and cached: only OCR routes need it.
   */
  dictionary(uri?: string): readonly string[];
  /** The pipeline step's `parameters` from the runtime config: trusted (may name files). */
  settings: Readonly<Record<string, string>>;
  /** The request's parameters (InferenceTask.parameters): untrusted, never used to pick files. */
  parameters: Readonly<Record<string, unknown>>;
}

/**
 * A built-in processor. It runs inline in a model's worker, before or after the model step, on one
 * request at a time. Bad inputs throw TensorError (the request fails with `invalid_input`).
 */
export interface Processor {
  name: string;
  run(inputs: readonly DecodedTensor[], context: ProcessorContext): DecodedTensor[];
}

/** The single tensor a processor works on: the one named `name`, else the only one of `datatype`. */
export function pickInput(
  inputs: readonly DecodedTensor[],
  processor: string,
  name: string,
  datatype: DecodedTensor["datatype"],
): DecodedTensor {
  const named = inputs.find((t) => t.name === name);
  if (named) return named;
  const typed = inputs.filter((t) => t.datatype === datatype);
  if (typed.length === 1) return typed[0]!;
  throw new ProcessorInputError(
    `${processor} needs a ${datatype} tensor named ${name} (or exactly one ${datatype} tensor); got ` +
      (inputs.map((t) => `${t.name} ${t.datatype}`).join(", ") || "none"),
  );
}

/** A processor's input does not fit; reported as `invalid_input`. */
export class ProcessorInputError extends TensorError {}

/** A processor setting is invalid (a pipeline configuration problem); reported as processor_error. */
export class ProcessorSettingError extends Error {
  constructor(processor: string, message: string) {
    super(`${processor}: ${message}`);
    this.name = "ProcessorSettingError";
  }
}

/** A positive integer from a step setting or request parameter (settings win), or `fallback`. */
export function positiveInteger(
  context: ProcessorContext,
  processor: string,
  key: string,
  fallback: number,
): number {
  const raw = context.settings[key] ?? context.parameters[key];
  if (raw === undefined) return fallback;
  const value = typeof raw === "string" ? Number(raw) : raw;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new ProcessorInputError(
      `${processor}: ${key} must be a positive integer, got ${JSON.stringify(raw)}`,
    );
  }
  return value;
}
