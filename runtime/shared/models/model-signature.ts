/**
 * The task signature of a configured model as the gateway needs it, without loading onnxruntime:
 * a generic model without `inputs`/`outputs` in the config gets them from its ONNX file (read with
 * the small protobuf reader). When the file is not reachable from this process (e.g. a pvc:// model
 * mounted only into the worker's pod), the signature stays open and the worker validates instead.
 */
import type { ModelConfig } from "../contracts/index.js";
import { resolveModelUri, type ResolveOptions } from "./model-source.js";
import { readOnnxTensors } from "./onnx-reader.js";
import { taskSignature, type ModelTensors, type TaskSignature } from "./task-signature.js";

/** Signature of `model`; `onnxTensors` reports whether the ONNX file was read. */
export function signatureFromConfig(
  model: ModelConfig,
  options: ResolveOptions = {},
): TaskSignature & { onnxTensors: boolean } {
  const needsFile = model.task !== "ocr-recognition" && (!model.inputs || !model.outputs);
  let tensors: ModelTensors | undefined;
  if (needsFile) {
    try {
      tensors = readOnnxTensors(resolveModelUri(model.uri, options).path);
    } catch {
      tensors = undefined;
    }
  }
  return { ...taskSignature(model, tensors), onnxTensors: tensors !== undefined };
}
