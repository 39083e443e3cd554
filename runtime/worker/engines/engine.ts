/**
 * What the worker needs from an engine: load a model, warmed up, and get back something that runs
 * feeds through it. The worker has one path (consume, batch, run, publish, ack, drain) whatever
 * the engine; engines/index.ts picks one per model.
 */
import type { ModelConfig, ProviderChoice } from "../../shared/contracts/index.js";
import type { Logger } from "../../shared/logger.js";
import type { ResolveOptions } from "../../shared/models/model-source.js";
import type { ModelTensors, TaskSignature } from "../../shared/models/task-signature.js";
import type { DecodedTensor, NumericArray, NumericDatatype } from "../../shared/tensors.js";
import type { LlamaEngine } from "./llama/llama-engine.js";

/** A loaded, warmed-up model. */
export interface ModelRunner {
  config: ModelConfig;
  /** Local path of the model file. */
  path: string;
  /** Inputs and outputs as the model file declares them (symbolic dimensions as -1). */
  tensors: ModelTensors;
  signature: TaskSignature;
  /** True when every input and output has a dynamic dimension 0, so requests can be stacked. */
  batchable: boolean;
  /** Seconds spent loading and warming up. */
  loadSeconds: number;
  /** The execution provider asked for and the one the model runs on (engines that have them). */
  provider?: ProviderChoice;
  /**
   * Runs the model; `feeds` are named like the model's inputs. Outputs come in model order. With
   * `giveAway` the engine may take the feeds' memory (no copy); the caller must not use them again.
   */
  run(feeds: readonly DecodedTensor[], options?: { giveAway?: boolean }): Promise<DecodedTensor[]>;
  /**
   * A zero-filled typed array for a feed, on memory an earlier run gave back when the engine keeps
   * it (onnx), else a new one. Batches are stacked into it.
   */
  allocate?: (datatype: NumericDatatype, length: number) => NumericArray;
  /**
   * Set when the engine returns OCR probabilities already reduced to their CTC best path: the FP32
   * [n, timesteps, classes] output comes back as [n, timesteps, 2] (class, probability), which is
   * all greedy decoding reads. `classes` is the model's class count, to check the dictionary.
   */
  bestPath?: { classes: number };
  /** Set once the model can no longer run at all (e.g. its thread died): not the request's fault. */
  failure(): Error | undefined;
  release(): Promise<void>;
  /** Set for generative (gguf) models: the consumer generates with it instead of calling run(). */
  generator?: LlamaEngine;
}

/** Options of {@link Engine.load}. */
export interface LoadOptions {
  log: Logger;
  resolve?: ResolveOptions;
  /** Batch sizes to warm up with; default [1] and the model's maxBatchSize. */
  warmupBatchSizes?: number[];
  /** The CUDA device for executionProvider cuda (onnx/execution-provider.ts); default 0. */
  cudaDeviceId?: number;
}

/** One way of running models: onnxruntime (engines/onnx) or llama.cpp (engines/llama). */
export interface Engine {
  /** The model format it runs (InferenceModel spec.model.format). */
  format: string;
  /** Resolves, loads and warms up `config`; throws a contextual error when the model cannot serve. */
  load(config: ModelConfig, options: LoadOptions): Promise<ModelRunner>;
}
