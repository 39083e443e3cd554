/**
 * onnxruntime's intra-op spin-waiting, side by side on the OCR recognition model in this process:
 * no spinning, onnxruntime's default spinning, and spinning that stops when each run returns (the
 * worker's choice, `sessionOptions` in runtime/worker/engines/onnx/model-runner.ts), and that
 * with onnxruntime's dynamic block sizing (`session.dynamic_block_base` 4), and the worker's choice
 * per run between its spinning and its non-spinning session (faster-choice.ts). Rounds
 * alternate between the sessions; each run is followed by an idle gap like the one a worker
 * sees between requests at one connection, and the CPU of that gap (where threads would keep
 * spinning) is counted.
 *
 *   npx tsx bench/spin-compare.ts [--batch=1] [--threads=2] [--gap-ms=8] [--rounds=6]
 *
 * Measurements only; nothing asserts.
 */
import { performance } from "node:perf_hooks";
import ort from "onnxruntime-node";
import { sessionOptions } from "../runtime/worker/engines/onnx/model-runner.js";
import { ocrModelPaths } from "../runtime/worker/tasks/ocr/ocr-models.js";
import { arg } from "./lib/compare-sides.js";
import { sleep } from "./lib/env.js";
import { printSessionRuns, workerChoiceRunner } from "./lib/session-runs.js";

const batch = Number(arg("batch", "1"));
const threads = Number(arg("threads", "2"));
const gapMs = Number(arg("gap-ms", "8"));
const rounds = Number(arg("rounds", "6"));
const runsPerRound = 40;

const intraOp = (spinning: "0" | "1", stopWhenRunReturns: boolean, dynamicBlockBase?: string) => ({
  ...sessionOptions(threads),
  extra: {
    session: {
      intra_op: { allow_spinning: spinning },
      ...(stopWhenRunReturns ? { force_spinning_stop: "1" } : {}),
      // Smaller work blocks handed out as threads finish: evens out threads slowed by other processes.
      ...(dynamicBlockBase ? { dynamic_block_base: dynamicBlockBase } : {}),
    },
  },
});
const variants = {
  "no spinning": intraOp("0", false),
  "spinning (onnxruntime default)": intraOp("1", false),
  "spinning, stopped when a run returns": intraOp("1", true),
  "the same, dynamic block base 4": intraOp("1", true, "4"),
};

const dims = [batch, 3, 48, 320];
const data = Float32Array.from({ length: dims.reduce((a, b) => a * b) }, () => Math.random() - 0.5);
const sessions = await Promise.all(
  Object.entries(variants).map(async ([name, options]) => {
    const session = await ort.InferenceSession.create(ocrModelPaths().recognition, {
      executionProviders: ["cpu"],
      ...options,
    });
    const feeds = { [session.inputNames[0]!]: new ort.Tensor("float32", data, dims) };
    for (let i = 0; i < 5; i++) await session.run(feeds);
    const run = () => session.run(feeds);
    return { name, run, release: () => session.release(), latencies: [] as number[], cpuMs: 0, runs: 0 };
  }),
);
// The worker's two sessions with its per-run choice between them (session-thread.ts).
sessions.push({
  name: "the worker's choice per run (faster-choice.ts)",
  ...(await workerChoiceRunner(ocrModelPaths().recognition, threads, data, dims)),
  latencies: [],
  cpuMs: 0,
  runs: 0,
});

for (let r = 0; r < rounds; r++) {
  for (const side of sessions) {
    await sleep(50);
    const cpuBefore = process.cpuUsage();
    for (let i = 0; i < runsPerRound; i++) {
      const started = performance.now();
      await side.run();
      side.latencies.push(performance.now() - started);
      if (gapMs > 0) await sleep(gapMs);
    }
    const cpu = process.cpuUsage(cpuBefore);
    side.cpuMs += (cpu.user + cpu.system) / 1000;
    side.runs += runsPerRound;
  }
}

printSessionRuns("session options", sessions, { batch, threads, gapMs, rounds, runsPerRound });
for (const s of sessions) await s.release();
