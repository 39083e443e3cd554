/**
 * What idle neighbours' periodic timers cost a model run: the OCR recognition model in this process
 * with the worker's single-line session (batch 1, 2 threads spinning within a run, an idle gap after
 * each run as at one connection), while three otherwise idle Node processes (as many as Turnpike's
 * roles) run prom-client's event-loop delay monitor at a 10 ms resolution (its default), at 100 ms
 * (runtime/shared/metrics.ts, EVENT_LOOP_SAMPLE_MS), or are stopped (SIGSTOP: nothing wakes). Rounds
 * alternate between the three, so a slow phase of the shared machine hurts each alike.
 *
 *   npx tsx bench/neighbour-timers.ts [--rounds=8] [--gap-ms=8] [--neighbours=3]
 *
 * Measurements only; nothing asserts.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { performance } from "node:perf_hooks";
import ort from "onnxruntime-node";
import { sessionOptions } from "../runtime/worker/engines/onnx/model-runner.js";
import { ocrModelPaths } from "../runtime/worker/tasks/ocr/ocr-models.js";
import { arg } from "./lib/compare-sides.js";
import { installInterruptHandler, onInterrupt, sleep } from "./lib/env.js";
import { round, summarize } from "./lib/stats.js";
import { renderTable } from "./lib/table.js";

installInterruptHandler();
const rounds = Number(arg("rounds", "8"));
const gapMs = Number(arg("gap-ms", "8"));
const count = Number(arg("neighbours", "3"));
const runsPerRound = 40;

/** An idle Node process whose only work is the event-loop delay monitor at `resolution` ms. */
const neighbour = (resolution: number) =>
  spawn(
    process.execPath,
    [
      "-e",
      `const h = require("node:perf_hooks").monitorEventLoopDelay({ resolution: ${resolution} });` +
        "h.enable(); setInterval(() => h.reset(), 3_600_000);",
    ],
    { stdio: "ignore" },
  );

const groups: Record<string, ChildProcess[]> = {
  "neighbours stopped": [],
  "neighbours sampling every 10 ms": Array.from({ length: count }, () => neighbour(10)),
  "neighbours sampling every 100 ms": Array.from({ length: count }, () => neighbour(100)),
};
const all = Object.values(groups).flat();
const stopAll = () => all.forEach((c) => c.kill("SIGKILL"));
onInterrupt(async () => stopAll());
const pause = (children: ChildProcess[], signal: "SIGSTOP" | "SIGCONT") =>
  children.forEach((c) => c.kill(signal));

try {
  await sleep(500);
  const session = await ort.InferenceSession.create(ocrModelPaths().recognition, {
    executionProviders: ["cpu"],
    ...sessionOptions(2),
  });
  const dims = [1, 3, 48, 320];
  const data = Float32Array.from({ length: dims.reduce((a, b) => a * b) }, () => Math.random() - 0.5);
  const feeds = { [session.inputNames[0]!]: new ort.Tensor("float32", data, dims) };
  for (let i = 0; i < 5; i++) await session.run(feeds);
  const results = Object.keys(groups).map((name) => ({ name, latencies: [] as number[], cpuMs: 0 }));

  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? [...results].reverse() : results;
    for (const side of order) {
      pause(all, "SIGSTOP");
      pause(groups[side.name]!, "SIGCONT");
      await sleep(100);
      const cpuBefore = process.cpuUsage();
      for (let i = 0; i < runsPerRound; i++) {
        const started = performance.now();
        await session.run(feeds);
        side.latencies.push(performance.now() - started);
        await sleep(gapMs);
      }
      const cpu = process.cpuUsage(cpuBefore);
      side.cpuMs += (cpu.user + cpu.system) / 1000;
    }
  }
  await session.release();
  console.log(
    renderTable(
      ["neighbours", "p50 ms per run", "mean ms", "p99 ms", "CPU ms per run"],
      results.map((s) => {
        const l = summarize(s.latencies);
        return [s.name, l.p50Ms, l.meanMs, l.p99Ms, round(s.cpuMs / s.latencies.length, 2)];
      }),
      1,
    ),
  );
  console.log(
    `batch 1, 2 threads, ${gapMs} ms idle after each run, ${count} neighbours, ` +
      `${rounds} alternating rounds of ${runsPerRound} runs`,
  );
} finally {
  stopAll();
}
