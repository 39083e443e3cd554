/**
 * Runs one request's route segment around the model call, without any I/O: `prepareRequest` does
 * everything before the model (route check, decoding, leading processors, task pre-processing such
 * as PNG -> tensor, input binding), `finishRequest` everything after it (task post-processing such
 * as CTC decoding, trailing processors, token counting). The model call itself is batched in
 * between by the consumer.
 */
import { performance } from "node:perf_hooks";
import {
  type InferenceTask,
  type RouteStep,
  type StepTiming,
  planSegment,
  type RouteSegment,
} from "../shared/contracts/index.js";
import { countOutputTokens, matchInputs } from "../shared/models/task-signature.js";
import { checkShape, elementCount, TensorError, type DecodedTensor } from "../shared/tensors.js";
import { batchKey, rowCount } from "./batch-tensors.js";
import type { ModelRunner } from "./engines/index.js";
import { ctcDecode, ctcOutputs } from "./processors/ctc-decode.js";
import { decodePng } from "../shared/images/decode-png.js";
import { decodeTaskInput, renamed } from "./task-inputs.js";
import { PROCESSORS, type ProcessorContext } from "./processors/index.js";
import { pickInput, ProcessorInputError } from "./processors/processor.js";
import { StepError, toStepError } from "./step-error.js";
import { ctcDecodeBestPath } from "./tasks/ocr/ctc-decode.js";
import { deferredLines } from "./tasks/ocr/deferred-lines.js";
import type { PixelImage } from "../shared/images/ocr-preprocess.js";

/** The model a worker serves, with what its processors need. */
export interface ServedModel {
  runner: ModelRunner;
  /** Character dictionary for CTC decoding: the one at `uri`, else the model's default (lazy). */
  dictionary: (uri?: string) => readonly string[];
  /** A pipeline step's processor `parameters` from the runtime config (empty when none). */
  stepSettings: (target: InferenceTask["target"], step: string) => Readonly<Record<string, string>>;
  /** Name this worker reports in StepTiming.worker. */
  worker: string;
}

/** A request ready for the model: its feeds and how it may be batched. */
export interface PreparedRequest {
  task: InferenceTask;
  segment: RouteSegment;
  /** Index of the model step in segment.steps. */
  modelIndex: number;
  /** Named like the model's inputs. */
  feeds: DecodedTensor[];
  /** Rows along dimension 0 (1 for models that cannot batch). */
  rows: number;
  /** Requests with equal keys can share a model run. */
  key: string;
  /** Timings of the processors that ran before the model. */
  timings: StepTiming[];
  queuedMs: number;
  /** Time this request spent in pre-processing, added to the model step's inferMs. */
  ownMs: number;
  /** Builds the processor context of one step. */
  contextFor: (step: string) => ProcessorContext;
}

/** What a finished segment produced. */
export interface SegmentOutcome {
  outputs: DecodedTensor[];
  /** Output tokens of this segment (not including earlier segments). */
  outputTokens: number;
  timings: StepTiming[];
}

/** The axis that requests of this model may be padded along to share a batch (OCR: line width). */
export function padAxisOf(runner: ModelRunner): number | undefined {
  return runner.config.task === "ocr-recognition" ? 3 : undefined;
}

/** Everything before the model call; throws StepError for a request that cannot run. */
export function prepareRequest(model: ServedModel, task: InferenceTask, queuedMs: number): PreparedRequest {
  const started = performance.now();
  const { runner } = model;
  let segment: RouteSegment;
  try {
    segment = planSegment(task.route);
  } catch (error) {
    throw toStepError(error, "route_error", "planning the route");
  }
  if (segment.model !== runner.config.name) {
    throw new StepError(
      "route_error",
      `message for model ${segment.model} reached the worker of ${runner.config.name}`,
    );
  }
  const modelIndex = segment.steps.findIndex((s) => s.model !== undefined);
  const contextFor = (step: string): ProcessorContext => ({
    dictionary: model.dictionary,
    settings: model.stepSettings(task.target, step),
    parameters: task.parameters ?? {},
  });
  let tensors: DecodedTensor[];
  try {
    tensors = task.inputs.map(decodeTaskInput);
  } catch (error) {
    throw toStepError(error, "invalid_input", "decoding inputs");
  }
  const timings: StepTiming[] = [];
  tensors = runProcessors(segment.steps.slice(0, modelIndex), tensors, contextFor, timings, model.worker);
  const feeds = bindFeeds(runner, tensors);
  const batchRows = runner.batchable ? rowCount(feeds) : undefined;
  return {
    task,
    segment,
    modelIndex,
    feeds,
    // A request that cannot be stacked gets its own key and a full batch, so it runs alone.
    rows: batchRows ?? runner.config.batching.maxBatchSize,
    key: batchRows === undefined ? `alone:${task.requestId}` : batchKey(feeds, padAxisOf(runner)),
    timings,
    queuedMs,
    ownMs: performance.now() - started,
    contextFor,
  };
}

/** Everything after the model call; throws StepError when post-processing fails. */
export function finishRequest(
  model: ServedModel,
  request: PreparedRequest,
  modelOutputs: DecodedTensor[],
  run: { inferMs: number; batchSize: number },
): SegmentOutcome {
  const started = performance.now();
  const { runner } = model;
  let outputs = modelOutputs;
  if (runner.config.task === "ocr-recognition") {
    const context = request.contextFor(request.segment.steps[request.modelIndex]!.step);
    const { bestPath } = runner;
    outputs = safely(
      () =>
        bestPath
          ? ctcOutputs(
              ctcDecodeBestPath(
                bestPathData(outputs),
                outputs[0]!.shape,
                context.dictionary(),
                bestPath.classes,
              ),
            )
          : ctcDecode.run(outputs, { ...context, settings: {} }),
      "decoding the recognition output",
    );
  }
  const modelStep = request.segment.steps[request.modelIndex]!;
  const timings: StepTiming[] = [
    ...request.timings,
    {
      step: modelStep.step,
      worker: model.worker,
      queuedMs: request.queuedMs,
      inferMs: round(run.inferMs + request.ownMs + performance.now() - started),
      batchSize: run.batchSize,
    },
  ];
  const trailing = request.segment.steps.slice(request.modelIndex + 1);
  outputs = runProcessors(trailing, outputs, request.contextFor, timings, model.worker);
  const outputTokens = safely(() => countOutputTokens(runner.config, outputs), "counting output tokens");
  return { outputs, outputTokens, timings };
}

/** Runs processor steps in order, appending a timing per step. */
function runProcessors(
  steps: readonly RouteStep[],
  tensors: DecodedTensor[],
  contextFor: (step: string) => ProcessorContext,
  timings: StepTiming[],
  worker: string,
): DecodedTensor[] {
  let current = tensors;
  for (const step of steps) {
    const processor = PROCESSORS.get(step.processor ?? "");
    if (!processor) {
      throw new StepError("route_error", `step ${step.step}: unknown processor ${String(step.processor)}`);
    }
    const started = performance.now();
    const context = contextFor(step.step);
    current = safely(() => processor.run(current, context), `step ${step.step} (${processor.name})`);
    timings.push({
      step: step.step,
      worker,
      queuedMs: 0,
      inferMs: round(performance.now() - started),
      batchSize: 1,
    });
  }
  return current;
}

/**
 * Matches the tensors against the model's signature and returns them named like the model's inputs.
 * For OCR, a PNG `image` input is turned into the model's tensor here (the task's own pre-processing).
 */
function bindFeeds(runner: ModelRunner, tensors: DecodedTensor[]): DecodedTensor[] {
  const { variant, names } = safely(
    () => matchInputs(runner.signature, tensors, { positional: true }),
    "matching inputs",
  );
  let feeds = tensors.map((t) => renamed(t, names.get(t.name) ?? t.name));
  if (runner.config.task === "ocr-recognition" && variant?.id === "image") {
    const name = runner.tensors.inputs[0]!.name;
    feeds = [safely(() => deferredLines(name, decodeLines(feeds)), "reading the image")];
  }
  try {
    for (const input of runner.tensors.inputs) {
      const feed = feeds.find((f) => f.name === input.name);
      if (!feed) throw new TensorError(`model ${runner.config.name} needs input ${input.name}`);
      if (feed.datatype !== input.datatype) {
        throw new TensorError(
          `input ${input.name}: expected datatype ${input.datatype}, got ${feed.datatype}`,
        );
      }
      checkShape(feed.shape, input.shape, `input ${input.name}`);
    }
    const extra = feeds.find((f) => !runner.tensors.inputs.some((i) => i.name === f.name));
    if (extra) throw new TensorError(`model ${runner.config.name} has no input ${extra.name}`);
  } catch (error) {
    throw toStepError(error, "invalid_input", "binding inputs");
  }
  return feeds;
}

/** The PNG lines of an OCR task's `image` input, decoded (resized later, see deferred-lines.ts). */
function decodeLines(feeds: readonly DecodedTensor[]): PixelImage[] {
  const input = pickInput(feeds, "image-to-tensor", "image", "BYTES");
  if (elementCount(input.shape) === 0)
    throw new ProcessorInputError("image-to-tensor needs at least one image");
  return (input.data as Uint8Array[]).map(decodePng);
}

/** The best-path data of an OCR model's one output (see ModelRunner.bestPath). */
function bestPathData(outputs: readonly DecodedTensor[]): Float32Array {
  const [output] = outputs;
  if (output?.datatype !== "FP32") throw new Error("the recognition model returned no FP32 best path");
  return output.data as Float32Array;
}

/** Runs `fn`, turning anything it throws into a StepError (TensorError -> invalid_input). */
function safely<T>(fn: () => T, context: string): T {
  try {
    return fn();
  } catch (error) {
    throw toStepError(error, "processor_error", context);
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
