/**
 * Section 1, the physical limit: the PP-OCRv4 recognition model in onnxruntime-node, in this
 * process, with the worker's session options (2 intra-op threads, 1 inter-op, all graph
 * optimizations), fed a real rendered text line at 48x320. Nothing else runs meanwhile.
 */
import { performance } from "node:perf_hooks";
import ort from "onnxruntime-node";
import { PNG } from "pngjs";
import {
  batchedSessionOptions,
  runLines,
  sessionOptions,
} from "../../runtime/worker/engines/onnx/model-runner.js";
import { LinePool } from "../../runtime/worker/engines/onnx/line-pool.js";
import { decodePng } from "../../runtime/shared/images/decode-png.js";
import { ocrModelPaths } from "../../runtime/worker/tasks/ocr/ocr-models.js";
import { recognitionBatch, recognitionWidthFor } from "../../runtime/shared/images/ocr-preprocess.js";
import { say } from "../lib/env.js";
import { CpuMeter, cpuWindow } from "../lib/processes.js";
import { summarize, round, type LatencySummary } from "../lib/stats.js";

export interface RawBatchResult {
  batch: number;
  runs: number;
  linesPerSecond: number;
  /** Latency of one session.run of the whole batch. */
  latency: LatencySummary;
  /** Share of the machine's cores used by other processes meanwhile. */
  foreignCpuPercent: number;
}

export interface RawModelResult {
  threads: number;
  input: string;
  batches: RawBatchResult[];
  batch1: RawBatchResult;
  best: RawBatchResult;
  /**
   * The same batches in the sessions the worker runs them in (batch 1: threads spin within a run;
   * 2 or more: threads never spin), when asked for: onnxruntime's default session above spins
   * between runs as well, which a busy host punishes more at larger batches.
   */
  workerSessions?: RawBatchResult[];
  /**
   * Batches of two or more run the worker's other way, asked for with workerSessions: each line a
   * run of its own on one of `threads` single-thread sessions side by side (line-pool.ts).
   */
  workerLines?: RawBatchResult[];
  /** The fastest of workerSessions and workerLines. */
  workerBest?: RawBatchResult;
  /** The fastest of everything measured: batches, workerSessions and workerLines. */
  fastest: RawBatchResult;
  /** PNG decode + resize/normalize of one line, as the worker does before the model (not in the figures above). */
  preprocessMsPerLine: number;
}

export const RAW_BATCH_SIZES = [1, 2, 4, 8];

export async function rawModel(
  png: Buffer,
  seconds: number,
  batchSizes: readonly number[] = RAW_BATCH_SIZES,
  threads = 2,
  options: { workerSessions?: boolean; lines?: boolean } = {},
): Promise<RawModelResult> {
  const decoded = PNG.sync.read(png);
  const image = { width: decoded.width, height: decoded.height, data: decoded.data, channels: 4 as const };
  const width = recognitionWidthFor([image]);
  if (width !== 320) throw new Error(`the benchmark line should fit 48x320, but needs width ${width}`);

  // What the worker does per line before the model runs.
  const started = performance.now();
  let preprocessRuns = 0;
  const bytes = new Uint8Array(png);
  while (performance.now() - started < 1000) {
    recognitionBatch([decodePng(bytes, 0)], { targetWidth: 320 });
    preprocessRuns++;
  }
  const preprocessMsPerLine = round((performance.now() - started) / preprocessRuns, 3);

  // onnxruntime's default session (threads spin between runs too), as the figures always were.
  const batches = await measureBatches("", image, batchSizes, seconds, () => ({
    executionProviders: ["cpu"],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
    logSeverityLevel: 4,
  }));
  // The worker's own sessions: one line in the session that spins within a run only, batches of
  // two or more in the one that never spins (model-runner.ts; one thread: the first for all).
  const workerSessions = options.workerSessions
    ? await measureBatches("worker's sessions, ", image, batchSizes, seconds, (batch) => ({
        executionProviders: ["cpu"],
        ...(batch > 1 && threads > 1 ? batchedSessionOptions(threads) : sessionOptions(threads)),
      }))
    : undefined;
  // The worker's lines (line-pool.ts): side by side on several threads, one by one on one.
  const lineBatches = batchSizes.filter((b) => b > 1);
  const workerLines =
    (options.workerSessions || options.lines) && lineBatches.length > 0
      ? await measureLines(image, lineBatches, seconds, threads)
      : undefined;
  const best = bestOf(batches);
  return {
    threads,
    input: "[b, 3, 48, 320] FP32 from a rendered text line",
    batches,
    batch1: batches[0]!,
    best,
    fastest: bestOf([...batches, ...(workerSessions ?? []), ...(workerLines ?? [])]),
    ...(workerSessions
      ? { workerSessions, workerBest: bestOf([...workerSessions, ...(workerLines ?? [])]) }
      : {}),
    ...(workerLines ? { workerLines } : {}),
    preprocessMsPerLine,
  };
}

const bestOf = (batches: RawBatchResult[]) =>
  batches.reduce((a, b) => (b.linesPerSecond > a.linesPerSecond ? b : a));

/**
 * Each batch size back to back as its lines side by side: the worker's line pool (line-pool.ts) of
 * `threads` single-thread sessions, each line a run of its own (one thread: one after another, as
 * the worker runs them on its model's own thread).
 */
async function measureLines(
  image: { width: number; height: number; data: Uint8Array; channels: 4 },
  batchSizes: readonly number[],
  seconds: number,
  threads: number,
): Promise<RawBatchResult[]> {
  const pool = await LinePool.start(
    ocrModelPaths().recognition,
    { ...sessionOptions(1), executionProviders: ["cpu"] },
    threads,
  );
  try {
    return await timeRuns("lines side by side, ", batchSizes, seconds, async (batch) => {
      const tensor = recognitionBatch(
        Array.from({ length: batch }, () => image),
        { targetWidth: 320 },
      );
      const feeds = [{ name: "x", datatype: "FP32" as const, shape: [...tensor.dims], data: tensor.data }];
      // Reduced to the CTC best path in the thread, as the worker does (no 1 MB of scores per line back).
      return () => runLines(pool, feeds, "ctc-best-path");
    });
  } finally {
    await pool.release();
  }
}

/** Times `runOf(batch)`'s runs back to back for `seconds` per batch size (after 3 warm-up runs). */
async function timeRuns(
  label: string,
  batchSizes: readonly number[],
  seconds: number,
  runOf: (batch: number) => Promise<() => Promise<unknown>>,
): Promise<RawBatchResult[]> {
  const results: RawBatchResult[] = [];
  for (const batch of batchSizes) {
    const run = await runOf(batch);
    for (let i = 0; i < 3; i++) await run(); // warm-up: allocations for this shape
    const times: number[] = [];
    const window = cpuWindow(new CpuMeter());
    const begin = performance.now();
    while (performance.now() - begin < seconds * 1000) {
      const t = performance.now();
      await run();
      times.push(performance.now() - t);
    }
    const elapsed = (performance.now() - begin) / 1000;
    const cpu = window.end();
    const result = {
      batch,
      runs: times.length,
      linesPerSecond: round((times.length * batch) / elapsed),
      latency: summarize(times),
      foreignCpuPercent: cpu.foreignPercent,
    };
    say(
      `raw model ${label}batch ${batch}: ${result.linesPerSecond} lines/s, p50 ${result.latency.p50Ms} ms, ` +
        `foreign ${cpu.foreignPercent}%`,
    );
    results.push(result);
  }
  return results;
}

/**
 * Each batch size back to back in a session with the options `optionsFor` gives it; batch sizes with
 * equal options share one session, as all of them did before the worker's sessions were measured.
 */
async function measureBatches(
  label: string,
  image: { width: number; height: number; data: Uint8Array; channels: 4 },
  batchSizes: readonly number[],
  seconds: number,
  optionsFor: (batch: number) => ort.InferenceSession.SessionOptions,
): Promise<RawBatchResult[]> {
  const sessions = new Map<string, ort.InferenceSession>();
  try {
    return await timeRuns(label, batchSizes, seconds, async (batch) => {
      const options = optionsFor(batch);
      const key = JSON.stringify(options);
      const session =
        sessions.get(key) ?? (await ort.InferenceSession.create(ocrModelPaths().recognition, options));
      sessions.set(key, session);
      const tensor = recognitionBatch(
        Array.from({ length: batch }, () => image),
        { targetWidth: 320 },
      );
      const feeds = { [session.inputNames[0]!]: new ort.Tensor("float32", tensor.data, tensor.dims) };
      return () => session.run(feeds);
    });
  } finally {
    for (const session of sessions.values()) await session.release();
  }
}

/** CPU time and lines of one block of model runs. */
export interface ModelCpuBlock {
  cpuMs: number;
  lines: number;
  seconds: number;
}

/**
 * The model in this process with exactly the worker's session options (intra-op threads that
 * stop spinning when a run returns), fed `batch` copies of the line: `measure` runs it for a while and returns the
 * process's CPU time (every thread) and the lines, the floor for the worker's CPU per line. A batch
 * of several may also run as its lines in the worker (line-pool.ts): then `measure` times both
 * ways, half the time each, and returns the cheaper per line.
 */
export async function openModelCpu(png: Buffer, batch: number, threads: number) {
  const decoded = PNG.sync.read(png);
  const image = { width: decoded.width, height: decoded.height, data: decoded.data, channels: 4 as const };
  const session = await ort.InferenceSession.create(ocrModelPaths().recognition, {
    executionProviders: ["cpu"],
    ...sessionOptions(threads),
  });
  const pool =
    batch > 1
      ? await LinePool.start(
          ocrModelPaths().recognition,
          { ...sessionOptions(1), executionProviders: ["cpu"] },
          threads,
        )
      : undefined;
  const tensor = recognitionBatch(
    Array.from({ length: batch }, () => image),
    { targetWidth: recognitionWidthFor([image]) },
  );
  const feeds = { [session.inputNames[0]!]: new ort.Tensor("float32", tensor.data, tensor.dims) };
  const lineFeeds = [
    { name: session.inputNames[0]!, datatype: "FP32" as const, shape: [...tensor.dims], data: tensor.data },
  ];
  const ways: (() => Promise<unknown>)[] = [() => session.run(feeds)];
  // Reduced to the CTC best path in the thread, as the worker does (no 1 MB of scores per line back).
  if (pool) ways.push(() => runLines(pool, lineFeeds, "ctc-best-path"));
  for (const way of ways) for (let i = 0; i < 3; i++) await way();
  const block = async (run: () => Promise<unknown>, seconds: number): Promise<ModelCpuBlock> => {
    const cpuBefore = process.cpuUsage();
    const begin = performance.now();
    let runs = 0;
    while (performance.now() - begin < seconds * 1000) {
      await run();
      runs++;
    }
    const cpu = process.cpuUsage(cpuBefore);
    return {
      cpuMs: (cpu.user + cpu.system) / 1000,
      lines: runs * batch,
      seconds: (performance.now() - begin) / 1000,
    };
  };
  return {
    async measure(seconds: number): Promise<ModelCpuBlock> {
      const blocks: ModelCpuBlock[] = [];
      for (const way of ways) blocks.push(await block(way, seconds / ways.length));
      return blocks.reduce((a, b) => (b.cpuMs / b.lines < a.cpuMs / a.lines ? b : a));
    },
    release: async () => {
      await session.release();
      await pool?.release();
    },
  };
}
