/**
 * The engines a worker can run models in, by model format. Each lives in its own folder
 * (engines/<format>/): onnx (onnxruntime-node) and gguf (node-llama-cpp, engines/llama).
 */
import type { ModelConfig } from "../../shared/contracts/index.js";
import type { Engine } from "./engine.js";
import { llamaEngine } from "./llama/generative-runner.js";
import { onnxEngine } from "./onnx/model-runner.js";

export type { Engine, LoadOptions, ModelRunner } from "./engine.js";

const ENGINES: readonly Engine[] = [onnxEngine, llamaEngine];

/** The engine that runs `config`'s model, by its format. */
export function engineFor(config: ModelConfig): Engine {
  const engine = ENGINES.find((e) => e.format === config.format);
  if (!engine) throw new Error(`model ${config.name}: no engine runs format ${config.format}`);
  return engine;
}
