/**
 * Shared by the bench scripts that time onnxruntime sessions of the OCR model against each other
 * (spin-compare.ts, ort-py-compare.ts): the worker's own per-run choice between its two sessions,
 * and the table they print.
 */
import { performance } from "node:perf_hooks";
import ort from "onnxruntime-node";
import { batchedSessionOptions, sessionOptions } from "../../runtime/worker/engines/onnx/model-runner.js";
import { FasterChoice } from "../../runtime/worker/engines/onnx/faster-choice.js";
import { round, summarize } from "./stats.js";
import { renderTable } from "./table.js";

/** The worker's two sessions of `model` with its per-run choice between them (faster-choice.ts), warmed up. */
export async function workerChoiceRunner(model: string, threads: number, data: Float32Array, dims: number[]) {
  const open = (options: ort.InferenceSession.SessionOptions) =>
    ort.InferenceSession.create(model, { executionProviders: ["cpu"], ...options });
  const spinning = await open(sessionOptions(threads));
  const quiet = await open(batchedSessionOptions(threads));
  const feeds = { [spinning.inputNames[0]!]: new ort.Tensor("float32", data, dims) };
  for (let i = 0; i < 5; i++) await Promise.all([spinning.run(feeds), quiet.run(feeds)]);
  const choice = new FasterChoice(["spinning", "quiet"] as const);
  return {
    run: async () => {
      const which = choice.next();
      const started = performance.now();
      const out = await (which === "quiet" ? quiet : spinning).run(feeds);
      choice.record(which, performance.now() - started, data.length);
      return out;
    },
    release: async () => {
      await spinning.release();
      await quiet.release();
    },
  };
}

/** One timed session's totals over the rounds. */
export interface SessionRuns {
  name: string;
  latencies: number[];
  cpuMs: number;
  runs: number;
}

/** Prints each session's run latencies and CPU per run, and how they were run. */
export function printSessionRuns(
  firstColumn: string,
  sides: SessionRuns[],
  how: { batch: number; threads: number; gapMs: number; rounds: number; runsPerRound: number },
): void {
  console.log(
    renderTable(
      [firstColumn, "p50 ms per run", "mean ms", "p99 ms", "CPU ms per run (with the gap)"],
      sides.map((s) => {
        const latency = summarize(s.latencies);
        return [s.name, latency.p50Ms, latency.meanMs, latency.p99Ms, round(s.cpuMs / s.runs, 2)];
      }),
      1,
    ),
  );
  console.log(
    `batch ${how.batch}, ${how.threads} intra-op threads, ${how.gapMs} ms idle after each run, ${how.rounds} alternating rounds of ${how.runsPerRound} runs`,
  );
}
