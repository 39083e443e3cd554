/**
 * The onnxruntime engine: loads one model into onnxruntime (on its own thread, see inference-thread.ts), warms it up,
 * describes its tensors and runs feeds through it. A tiny model's small batches run on the main
 * thread instead (inline-session.ts).
 */
import { statSync } from "node:fs";
import { performance } from "node:perf_hooks";
import type { InferenceSession } from "onnxruntime-node";
import {
  type Datatype,
  type ModelConfig,
  type TensorSpec,
  type ProviderChoice,
} from "../../../shared/contracts/index.js";
import type { Logger } from "../../../shared/logger.js";
import { resolveModelUri } from "../../../shared/models/model-source.js";
import { taskSignature, type ModelTensors } from "../../../shared/models/task-signature.js";
import {
  allocateTyped,
  bytesToText,
  elementCount,
  ONNX_TYPE,
  textTensor,
  type DecodedTensor,
  type NumericArray,
} from "../../../shared/tensors.js";
import { concatRows, splitRows } from "../../batch-tensors.js";
import type { Engine, LoadOptions, ModelRunner } from "../engine.js";
import { openWithProvider } from "./execution-provider.js";
import { InferenceThread, type OutputReduction, type ThreadTensor } from "./inference-thread.js";
import { inlineBatch, inlineEligible, InlineSession } from "./inline-session.js";
import { FasterChoice } from "./faster-choice.js";
import { LinePool } from "./line-pool.js";

const DATATYPE_OF_ONNX = new Map<string, Datatype>(
  Object.entries(ONNX_TYPE).map(([datatype, onnx]) => [onnx, datatype as Datatype]),
);

/** Converts onnxruntime metadata into tensor specs; types Turnpike does not carry are an error. */
export function specsOf(metadata: readonly InferenceSession.ValueMetadata[], what: string): TensorSpec[] {
  return metadata.map((m) => {
    if (!m.isTensor) throw new Error(`${what} ${m.name} is not a tensor`);
    const datatype = DATATYPE_OF_ONNX.get(m.type);
    if (!datatype) throw new Error(`${what} ${m.name} has type ${m.type}, which Turnpike does not carry`);
    return { name: m.name, datatype, shape: m.shape.map((d) => (typeof d === "number" && d >= 0 ? d : -1)) };
  });
}

/** The worker's session options for `threads` intra-op threads (the benchmark's raw model uses them too). */
export function sessionOptions(threads: number): InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: threads,
    // One run at a time per worker: parallelism comes from intra-op threads and batching.
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
    // Intra-op threads spin between the operators of one run (no sleep/wake per operator), and stop
    // spinning the moment the run returns, so an idle worker burns no CPU that the pod's CPU limit
    // and the processes sharing its cores need. Against no spinning at all, batch 1 on 2 threads:
    // 18.6 -> 14.0 ms per run and 30.5 -> 28.5 ms of CPU (bench/README.md, "Spin within a run").
    extra: { session: { intra_op: { allow_spinning: "1" }, force_spinning_stop: "1" } },
    // onnxruntime would print every failed run to stderr; failures reach our log and the result.
    logSeverityLevel: 4,
  };
}

/**
 * The options of the session that runs a worker's batches of 2 or more: intra-op threads that never
 * spin. Spinning pays off for one line (short operators; see sessionOptions), but a batch's
 * operators are long enough to sleep and wake between, and a spinning thread that waits for a
 * descheduled peer burns the CPU the gateway, the broker and the other processes on the same cores
 * need: batch 4 back to back beside a spinning neighbour took 189 CPU ms per run spinning against
 * 120 without, at the same p50 (bench/README.md, "Sixth round", ocr-c32). Single lines run here
 * too while that is faster, as on busy cores (session-thread.ts, faster-choice.ts).
 */
export function batchedSessionOptions(threads: number): InferenceSession.SessionOptions {
  return { ...sessionOptions(threads), extra: { session: { intra_op: { allow_spinning: "0" } } } };
}

const cpuOnly = (providers: NonNullable<InferenceSession.SessionOptions["executionProviders"]>) =>
  providers.every((p) => p === "cpu");

/**
 * The largest model file given the second, batched session and the line pool (line-pool.ts): they
 * hold the weights again (the pool once per thread, each on a thread of its own), so a large model
 * keeps one session (and the pod the memory it was sized for). For the OCR model on 2 threads the
 * pool adds ~150 MB of RSS (measured under tsx: 165 -> 319 MB after loading and 10 batches of 4).
 */
export const MAX_BATCHED_SESSION_BYTES = 64 * 1024 * 1024;

/** Whether `config` at `path` gets the batched session (see batchedSessionOptions) and the line pool. */
const wantsBatchedSession = (config: ModelConfig, path: string) =>
  config.batching.maxBatchSize > 1 && config.threads > 1 && statSync(path).size <= MAX_BATCHED_SESSION_BYTES;

/** Resolves, loads and warms up `config`; throws a contextual error when the model cannot serve. */
export async function loadModel(config: ModelConfig, options: LoadOptions): Promise<ModelRunner> {
  const { log } = options;
  const started = performance.now();
  const { path } = resolveModelUri(config.uri, options.resolve);
  let session: InferenceThread;
  let provider: ProviderChoice;
  try {
    ({ session, choice: provider } = await openWithProvider(
      config.executionProvider,
      options.cudaDeviceId ?? 0,
      (executionProviders) =>
        InferenceThread.start(
          path,
          { executionProviders, ...sessionOptions(config.threads) },
          // A second session only where batches of several happen on a pool of CPU threads.
          cpuOnly(executionProviders) && wantsBatchedSession(config, path)
            ? { executionProviders, ...batchedSessionOptions(config.threads) }
            : undefined,
        ),
      log,
    ));
  } catch (cause) {
    throw new Error(`loading model ${config.name} from ${path}`, { cause });
  }
  let tensors: ModelTensors;
  try {
    tensors = {
      inputs: specsOf(session.info.inputMetadata, "input"),
      outputs: specsOf(session.info.outputMetadata, "output"),
    };
  } catch (error) {
    await session.release();
    throw error;
  }
  const signature = taskSignature(config, tensors);
  const batchable =
    [...tensors.inputs, ...tensors.outputs].every((t) => t.shape[0] === -1) && tensors.inputs.length > 0;

  const bestPath = ctcBestPathOf(config, tensors);
  const reduce = bestPath ? ("ctc-best-path" as const) : undefined;
  // A tiny model's small batches run on the main thread as well (see inline-session.ts).
  let inline: InlineSession | undefined;
  if (inlineEligible({ fileBytes: statSync(path).size, cpu: provider.used === "cpu", reduced: !!reduce })) {
    try {
      // One intra-op thread: no pool of spinning threads for runs of microseconds.
      inline = await InlineSession.start(path, { ...sessionOptions(1), executionProviders: ["cpu"] });
    } catch (err) {
      log.warn({ err }, "no main-thread session for this small model; every batch goes to its thread");
    }
  }
  // A batch of several may run as its lines instead, where that is faster (line-pool.ts); not for a
  // tiny model with a main-thread session, whose runs are too short to be worth a thread each.
  let lines: LinePool | undefined;
  const linesMayRun = batchable && !inline && provider.used === "cpu" && config.batching.maxBatchSize > 1;
  if (linesMayRun && config.threads === 1) {
    // One thread: its lines one after another on the model's own thread, no second session.
    lines = LinePool.over(session);
  } else if (linesMayRun && wantsBatchedSession(config, path)) {
    try {
      lines = await LinePool.start(
        path,
        { ...sessionOptions(1), executionProviders: ["cpu"] },
        config.threads,
      );
    } catch (err) {
      log.warn({ err }, "no line pool for this model; every batch runs as one");
    }
  }
  const batchChoices = new Map<number, FasterChoice<BatchWay>>();
  const runBatch = async (
    feeds: readonly DecodedTensor[],
    giveAway: boolean | undefined,
  ): Promise<DecodedTensor[]> => {
    const rows = feeds[0]?.shape[0] ?? 1;
    const asOne = async () =>
      (await session.run(feeds.map(toThread), { giveAway, reduce, batched: true })).map(fromThread);
    const pool = lines;
    if (!pool) return asOne();
    let choice = batchChoices.get(rows);
    // A probe here is a whole batch the slower way: they thin out to one in 256 while they confirm.
    if (!choice)
      batchChoices.set(rows, (choice = new FasterChoice<BatchWay>(["batch", "lines"], 32, 0.2, 256)));
    const before = choice.best();
    const way = choice.next();
    const started = performance.now();
    let outputs: DecodedTensor[];
    try {
      outputs = way === "lines" ? await runLines(pool, feeds, reduce) : await asOne();
    } catch (error) {
      // A pool thread that died, or rows whose outputs do not stack: batches run as one from now on.
      if (way !== "lines") throw error;
      log.warn({ err: error }, "running a batch as its lines failed; batches run as one from now on");
      lines = undefined;
      void pool.release().catch(() => undefined);
      return asOne();
    }
    choice.record(
      way,
      performance.now() - started,
      feeds.reduce((n, f) => n + elementCount(f.shape), 0),
    );
    const after = choice.best();
    if (after && after !== before) {
      log.info(
        { rows, way: after, msPerElement: choice.averages() },
        `batches of ${rows} now run as ${after === "lines" ? "their lines side by side" : "one batch"}`,
      );
    }
    return outputs;
  };
  const run = async (
    feeds: readonly DecodedTensor[],
    runOptions: { giveAway?: boolean } = {},
  ): Promise<DecodedTensor[]> => {
    if (batchable && (feeds[0]?.shape[0] ?? 1) > 1 && !inline) return runBatch(feeds, runOptions.giveAway);
    const thread = feeds.map(toThread);
    const outputs =
      // A broken thread still answers (with its failure), so the consumer stops this worker as before.
      inline && !session.failure && inlineBatch(thread)
        ? await inline.run(thread)
        : await session.run(thread, {
            giveAway: runOptions.giveAway,
            reduce,
            batched: batchable && (thread[0]?.dims[0] ?? 1) > 1,
          });
    return outputs.map(fromThread);
  };
  const release = async () => {
    const main = inline;
    inline = undefined;
    await main?.release().catch(() => undefined);
    const pool = lines;
    lines = undefined;
    await pool?.release().catch(() => undefined);
    await session.release();
  };

  const sizes = options.warmupBatchSizes ?? [
    1,
    ...(batchable && config.batching.maxBatchSize > 1 ? [config.batching.maxBatchSize] : []),
  ];
  try {
    for (const size of sizes) await warmUp(config, tensors, size, run, log);
    // Each pool thread's first run, not a request's (a line per thread, side by side).
    const pool = lines;
    if (pool) await warmUp(config, tensors, pool.size, (feeds) => runLines(pool, feeds, reduce), log);
  } catch (error) {
    await release();
    throw error;
  }
  const loadSeconds = (performance.now() - started) / 1000;
  log.info(
    { path, tensors, batchable, loadSeconds, mainThread: !!inline, linePool: lines?.size ?? 0 },
    "model loaded and warmed up",
  );
  return {
    config,
    path,
    tensors,
    signature,
    batchable,
    loadSeconds,
    provider,
    run,
    allocate: (datatype, length) => {
      const empty = allocateTyped(datatype, 0);
      const spare = session.takeSpare(length * empty.BYTES_PER_ELEMENT);
      if (!spare) return allocateTyped(datatype, length);
      new Uint8Array(spare).fill(0);
      return new (empty.constructor as new (buffer: ArrayBuffer) => NumericArray)(spare);
    },
    ...(bestPath ? { bestPath } : {}),
    failure: () => session.failure,
    release,
  };
}

/**
 * Runs the model once on zeros so the first real request does not pay for lazy allocations. OCR
 * uses its real input size (48x320). For a generic model, unknown dimensions are guessed as 1; if
 * the model rejects the guess, that is only a warning (the guess, not the model, may be wrong).
 */
async function warmUp(
  config: ModelConfig,
  tensors: ModelTensors,
  batch: number,
  run: (feeds: readonly DecodedTensor[]) => Promise<DecodedTensor[]>,
  log: Logger,
): Promise<void> {
  let guessed = false;
  const feeds = tensors.inputs.map((input): DecodedTensor => {
    const shape = input.shape.map((d, i) => {
      if (d >= 0) return d;
      if (i === 0) return batch;
      if (config.task === "ocr-recognition" && i === 3) return 320;
      guessed = true;
      return 1;
    });
    const count = elementCount(shape);
    const data =
      input.datatype === "BYTES"
        ? Array.from({ length: count }, () => new Uint8Array(0))
        : allocateTyped(input.datatype, count);
    return { name: input.name, datatype: input.datatype, shape, data };
  });
  try {
    await run(feeds);
  } catch (cause) {
    if (!guessed) throw new Error(`warming up model ${config.name} (batch ${batch})`, { cause });
    log.warn({ err: cause, batch }, "warm-up with guessed dimensions failed; serving anyway");
  }
}

/**
 * An OCR recognition model with one FP32 [n, timesteps, classes] output of a known class count has
 * its output reduced to the CTC best path in the model's thread (see ModelRunner.bestPath).
 */
function ctcBestPathOf(config: ModelConfig, tensors: ModelTensors): { classes: number } | undefined {
  const [output, ...more] = tensors.outputs;
  if (config.task !== "ocr-recognition" || !output || more.length > 0) return undefined;
  const classes = output.shape[2] ?? -1;
  return output.datatype === "FP32" && output.shape.length === 3 && classes > 0 ? { classes } : undefined;
}

/**
 * Runs each row of `feeds` as a run of its own on `pool` and stacks the outputs back in row order
 * (concatRows throws when the rows' outputs differ beyond dimension 0).
 */
export async function runLines(
  pool: LinePool,
  feeds: readonly DecodedTensor[],
  reduce?: OutputReduction,
): Promise<DecodedTensor[]> {
  const rows = feeds[0]?.shape[0] ?? 0;
  // splitRows copies each row into memory of its own, so it can move to its thread.
  const byFeed = feeds.map((feed) =>
    splitRows(
      feed,
      Array.from({ length: rows }, () => 1),
    ),
  );
  const lines = Array.from({ length: rows }, (_, row) => byFeed.map((pieces) => toThread(pieces[row]!)));
  const outputs = await pool.run(lines, reduce);
  return (outputs[0] ?? []).map((_, o) => concatRows(outputs.map((line) => fromThread(line[o]!))));
}

/** The two ways a batch of several can run (see runBatch in loadModel, line-pool.ts). */
type BatchWay = "batch" | "lines";

/** The onnxruntime engine. */
export const onnxEngine: Engine = { format: "onnx", load: loadModel };

function toThread(tensor: DecodedTensor): ThreadTensor {
  const data = tensor.datatype === "BYTES" ? bytesToText(tensor) : (tensor.data as NumericArray);
  return { name: tensor.name, type: ONNX_TYPE[tensor.datatype], dims: tensor.shape, data };
}

function fromThread(tensor: ThreadTensor): DecodedTensor {
  const datatype = DATATYPE_OF_ONNX.get(tensor.type);
  if (!datatype)
    throw new Error(`output ${tensor.name} has type ${tensor.type}, which Turnpike does not carry`);
  if (datatype === "BYTES") return textTensor(tensor.name, tensor.data as string[], [...tensor.dims]);
  return { name: tensor.name, datatype, shape: [...tensor.dims], data: tensor.data as NumericArray };
}
