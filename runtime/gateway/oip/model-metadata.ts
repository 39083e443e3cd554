/**
 * What the Open Inference Protocol's metadata routes say about a model or pipeline, pure: the
 * model metadata (GET /v2/models/{name}), the model configuration in the shape Triton-compatible
 * clients read (GET /v2/models/{name}/config), and the version a client may address.
 *
 * `inputs` lists tensors a generic client can build from their datatype and shape alone: when a
 * model accepts several input variants (OCR: PNG `image`, or the raw tensor `x`), the variants
 * whose data is plain numbers or text come first, so `inputs` is the raw tensor; every variant is
 * still listed in `parameters.input_variants`.
 */
import type { Datatype, RouteStep, RuntimeConfig } from "../../shared/contracts/index.js";
import {
  taskSignature,
  type InputVariant,
  type TensorSignature,
} from "../../shared/models/task-signature.js";
import { PROCESSOR_CONTRACTS } from "../input-contracts.js";
import { routeModels } from "../tokens.js";

/** The version of a model or pipeline when its config carries none (a hand-written config). */
export const DEFAULT_VERSION = "1";

/** The version clients address for `name` (the resource's generation), or undefined if unknown. */
export function versionOf(config: RuntimeConfig, name: string): string | undefined {
  const target = config.models.find((m) => m.name === name) ?? config.pipelines.find((p) => p.name === name);
  return target ? (target.version ?? DEFAULT_VERSION) : undefined;
}

/** The input variants of a route's first step, generic ones (no base64 binary data) first. */
export function inputVariants(config: RuntimeConfig, route: readonly RouteStep[]): InputVariant[] {
  const first = route[0];
  const models = routeModels(config, route);
  if (first?.model && models[0]) {
    const variants = taskSignature(models[0]).inputVariants;
    const binary = (v: InputVariant) => v.tensors.some((t) => t.contentEncoding === "base64");
    return [...variants.filter((v) => !binary(v)), ...variants.filter(binary)];
  }
  const contract = first?.processor ? PROCESSOR_CONTRACTS[first.processor] : undefined;
  if (!contract) return [];
  const shape = contract.ranks?.[0] === 1 ? [-1] : contract.ranks ? Array(contract.ranks[0]).fill(-1) : [-1];
  const tensor: TensorSignature = {
    name: contract.input,
    datatype: contract.datatype,
    shape,
    ...(contract.base64 ? { contentEncoding: "base64" as const } : {}),
  };
  return [{ id: first!.processor!, tensors: [tensor] }];
}

/** The OIP model metadata of a model or pipeline. */
export function modelMetadata(
  config: RuntimeConfig,
  name: string,
  kind: "model" | "pipeline",
  route: RouteStep[],
) {
  const models = routeModels(config, route);
  const last = route.at(-1)?.model && models.at(-1) ? taskSignature(models.at(-1)!) : undefined;
  const variants = inputVariants(config, route);
  return {
    name,
    versions: [versionOf(config, name) ?? DEFAULT_VERSION],
    platform: kind === "model" ? "onnxruntime_onnx" : "turnpike_pipeline",
    inputs: variants[0]?.tensors ?? [],
    outputs: last?.outputs ?? [],
    parameters: {
      kind,
      steps: route.map((s) => s.model ?? `processor:${s.processor}`),
      ...(variants.length > 1 ? { input_variants: variants } : {}),
      ...(models[0] ? { task: models[0].task, tokens: models[0].tokens } : {}),
    },
  };
}

const TRITON_TYPE: Record<Datatype, string> = {
  BOOL: "TYPE_BOOL",
  UINT8: "TYPE_UINT8",
  INT8: "TYPE_INT8",
  INT32: "TYPE_INT32",
  INT64: "TYPE_INT64",
  FP16: "TYPE_FP16",
  FP32: "TYPE_FP32",
  FP64: "TYPE_FP64",
  BYTES: "TYPE_STRING",
};

/**
 * The model configuration as Triton-compatible clients read it: with `max_batch_size` > 0, `dims`
 * leave out the batch dimension. Turnpike's own settings are under `parameters`.
 */
export function modelConfiguration(
  config: RuntimeConfig,
  name: string,
  kind: "model" | "pipeline",
  route: RouteStep[],
) {
  const models = routeModels(config, route);
  const metadata = modelMetadata(config, name, kind, route);
  const entry = route[0]?.model ? models[0] : undefined;
  const batchable = entry ? taskSignature(entry).batchable : metadata.inputs.every((t) => t.shape[0] === -1);
  const maxBatchSize = batchable ? Math.max(1, entry?.batching.maxBatchSize ?? 1) : 0;
  const dims = (t: TensorSignature) => (maxBatchSize > 0 ? t.shape.slice(1) : t.shape);
  const tensor = (t: TensorSignature) => ({
    name: t.name,
    data_type: TRITON_TYPE[t.datatype],
    dims: dims(t),
  });
  return {
    name,
    version: metadata.versions[0],
    platform: metadata.platform,
    backend: kind === "model" ? "onnxruntime" : "turnpike",
    max_batch_size: maxBatchSize,
    input: metadata.inputs.map(tensor),
    output: metadata.outputs.map(tensor),
    ...(entry
      ? { dynamic_batching: { max_queue_delay_microseconds: entry.batching.maxDelayMs * 1000 } }
      : {}),
    parameters: {
      ...metadata.parameters,
      ...(kind === "model" && entry
        ? { execution_provider: entry.executionProvider, threads: entry.threads }
        : {}),
    },
  };
}
