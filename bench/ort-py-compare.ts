/**
 * The OCR recognition model in onnxruntime-node (this process) against PyPI onnxruntime (KServe's
 * peer, bench/peers/ort_runs.py in the peer's virtual environment), side by side on the same
 * [BATCH,3,48,320] input and threads: the worker's sessions and their per-run choice
 * (model-runner.ts, faster-choice.ts), onnxruntime's defaults in Node (KServe's options, so a
 * difference between the two runtimes shows apart from one between their options), and Python with
 * KServe's options and with the worker's spinning ones. Rounds alternate between the variants;
 * each run is followed by an idle gap like the one between requests at one connection.
 *
 *   npx tsx bench/ort-py-compare.ts [--batch=1] [--threads=2] [--gap-ms=5] [--rounds=6] [--runs=40]
 *
 * The venv is bench/peers/kserve-setup.sh's (~/.cache/turnpike/venv-kserve). Measurements only.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { homedir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import ort from "onnxruntime-node";
import { batchedSessionOptions, sessionOptions } from "../runtime/worker/engines/onnx/model-runner.js";
import { ocrModelPaths } from "../runtime/worker/tasks/ocr/ocr-models.js";
import { arg } from "./lib/compare-sides.js";
import { repoRoot, sleep } from "./lib/env.js";
import { printSessionRuns, workerChoiceRunner } from "./lib/session-runs.js";

const batch = Number(arg("batch", "1"));
const threads = Number(arg("threads", "2"));
const gapMs = Number(arg("gap-ms", "5"));
const rounds = Number(arg("rounds", "6"));
const runsPerRound = Number(arg("runs", "40"));
const python = arg("python", join(homedir(), ".cache/turnpike/venv-kserve/bin/python"));
const only = arg("only", "");

interface Side {
  name: string;
  /** Runs one round; returns each run's ms and the round's CPU ms. */
  round(): Promise<{ latencies: number[]; cpuMs: number }>;
  release(): Promise<void>;
  latencies: number[];
  cpuMs: number;
  runs: number;
}

const model = ocrModelPaths().recognition;
const dims = [batch, 3, 48, 320];
const data = Float32Array.from({ length: dims.reduce((a, b) => a * b) }, () => Math.random() - 0.5);

/** A round of runs of `run` in this process, with the gap after each. */
async function nodeRound(run: () => Promise<unknown>) {
  const latencies: number[] = [];
  const cpuBefore = process.cpuUsage();
  for (let i = 0; i < runsPerRound; i++) {
    const started = performance.now();
    await run();
    latencies.push(performance.now() - started);
    if (gapMs > 0) await sleep(gapMs);
  }
  const cpu = process.cpuUsage(cpuBefore);
  return { latencies, cpuMs: (cpu.user + cpu.system) / 1000 };
}

async function nodeSide(name: string, options: ort.InferenceSession.SessionOptions): Promise<Side> {
  const session = await ort.InferenceSession.create(model, { executionProviders: ["cpu"], ...options });
  const feeds = { [session.inputNames[0]!]: new ort.Tensor("float32", data, dims) };
  for (let i = 0; i < 5; i++) await session.run(feeds);
  return {
    name,
    round: () => nodeRound(() => session.run(feeds)),
    release: () => session.release(),
    latencies: [],
    cpuMs: 0,
    runs: 0,
  };
}

async function choiceSide(): Promise<Side> {
  const runner = await workerChoiceRunner(model, threads, data, dims);
  return {
    name: "node: the worker's choice per run (faster-choice.ts)",
    round: () => nodeRound(runner.run),
    release: runner.release,
    latencies: [],
    cpuMs: 0,
    runs: 0,
  };
}

async function pythonSide(name: string, config: string[]): Promise<Side> {
  const child = spawn(
    python,
    [
      join(repoRoot, "bench/peers/ort_runs.py"),
      "--model-file",
      model,
      "--threads",
      String(threads),
      "--batch",
      String(batch),
      ...config.flatMap((c) => ["--config", c]),
    ],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => JSON.parse(String((await lines.next()).value)) as Record<string, unknown>;
  const ready = await next();
  return {
    name: `${name} (onnxruntime ${String(ready.version)})`,
    round: async () => {
      child.stdin.write(`${runsPerRound} ${gapMs}\n`);
      return (await next()) as { latencies: number[]; cpuMs: number };
    },
    release: async () => {
      child.stdin.end();
      await once(child, "exit");
    },
    latencies: [],
    cpuMs: 0,
    runs: 0,
  };
}

const { extra: _spinning, ...plainOptions } = sessionOptions(threads);
/** The single-line session's options with more session config entries. */
const withConfig = (entries: Record<string, string>): ort.InferenceSession.SessionOptions => ({
  ...sessionOptions(threads),
  extra: { session: { intra_op: { allow_spinning: "1" }, force_spinning_stop: "1", ...entries } },
});
const makers: Record<string, () => Promise<Side>> = {
  "node-spin": () =>
    nodeSide("node: the worker's single-line session (spins within a run)", sessionOptions(threads)),
  "node-quiet": () =>
    nodeSide("node: the worker's batched session (never spins)", batchedSessionOptions(threads)),
  "node-choice": choiceSide,
  "node-default": () => nodeSide("node: onnxruntime's default spinning (KServe's options)", plainOptions),
  "node-denormal": () =>
    nodeSide("node: the single-line session, denormals as zero", withConfig({ set_denormal_as_zero: "1" })),
  "node-batch1": () =>
    nodeSide("node: the single-line session, batch fixed at 1", {
      ...sessionOptions(threads),
      freeDimensionOverrides: { "p2o.DynamicDimension.0": 1 },
    }),
  "node-extended": () =>
    nodeSide("node: the single-line session, graph level extended", {
      ...sessionOptions(threads),
      graphOptimizationLevel: "extended",
    }),
  "node-nopattern": () =>
    nodeSide("node: the single-line session, no memory pattern", {
      ...sessionOptions(threads),
      enableMemPattern: false,
    }),
  "py-kserve": () => pythonSide("python: KServe's session", []),
  "py-worker": () =>
    pythonSide("python: the worker's spinning options", [
      "session.intra_op.allow_spinning=1",
      "session.force_spinning_stop=1",
    ]),
};
const chosen = only ? only.split(",") : Object.keys(makers);
const sides: Side[] = [];
for (const key of chosen) {
  const make = makers[key];
  if (!make) throw new Error(`unknown side ${key}; sides: ${Object.keys(makers).join(", ")}`);
  sides.push(await make());
}

for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? sides : [...sides].reverse();
  for (const side of order) {
    await sleep(50);
    const { latencies, cpuMs } = await side.round();
    side.latencies.push(...latencies);
    side.cpuMs += cpuMs;
    side.runs += latencies.length;
  }
}

printSessionRuns("session", sides, { batch, threads, gapMs, rounds, runsPerRound });
for (const s of sides) await s.release();
