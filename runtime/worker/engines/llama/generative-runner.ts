/**
 * A GGUF model as the worker's ModelRunner: the same load/fail/release life as an ONNX model, with
 * the engine in `generator` (the consumer generates with it instead of running tensor batches).
 */
import type { Logger } from "../../../shared/logger.js";
import { resolveModelUri, type ResolveOptions } from "../../../shared/models/model-source.js";
import { taskSignature } from "../../../shared/models/task-signature.js";
import type { ModelConfig } from "../../../shared/contracts/index.js";
import type { Engine, ModelRunner } from "../engine.js";
import { LlamaEngine } from "./llama-engine.js";

/** Loads a `format: gguf` model; throws a contextual error when it cannot serve. */
export async function loadGenerativeModel(
  config: ModelConfig,
  options: { log: Logger; resolve?: ResolveOptions },
): Promise<ModelRunner> {
  const { path } = resolveModelUri(config.uri, options.resolve);
  if (config.executionProvider === "cuda") {
    options.log.warn("executionProvider cuda requested; this runtime build runs llama.cpp on the CPU");
  }
  const engine = await LlamaEngine.load(config, path, options.log);
  const tensors = { inputs: [], outputs: [] };
  return {
    config,
    path,
    tensors,
    signature: taskSignature(config, tensors),
    batchable: false,
    loadSeconds: engine.loadSeconds,
    run: () => Promise.reject(new Error(`model ${config.name} generates text; it runs no tensor batches`)),
    failure: () => engine.failure(),
    release: () => engine.close(),
    generator: engine,
  };
}

/** The engine of `format: gguf` models. */
export const llamaEngine: Engine = { format: "gguf", load: loadGenerativeModel };
