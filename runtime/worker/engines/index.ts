/**
 * The engines a worker can run models in, by model format. Each lives in its own folder
 * (engines/<format>/); a new one (e.g. gguf) adds its folder and an entry here.
 */
import type { ModelConfig } from "../../shared/contracts/index.js";
import type { Engine } from "./engine.js";
import { onnxEngine } from "./onnx/model-runner.js";

export type { Engine, LoadOptions, ModelRunner } from "./engine.js";

const ENGINES: readonly Engine[] = [onnxEngine];

/** The engine that runs `config`'s model (every model is ONNX until the config names a format). */
export function engineFor(_config: ModelConfig): Engine {
  return ENGINES[0]!;
}
