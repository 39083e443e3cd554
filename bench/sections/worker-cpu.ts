/**
 * Worker efficiency: the OCR worker's CPU time per line against the model's own CPU time per line.
 *
 * The worker runs as its own process through its real entry point (optionally pinned to cores with
 * taskset); this process publishes N OCR tasks straight to its queue, as the gateway would (a PNG
 * `image` input, or the model's `x` tensor), keeps enough of them in flight for full batches,
 * consumes the results, and reads the worker's CPU time from /proc before and after. Then the model
 * runs in this process with the worker's session options, batch and threads (pinned the same way;
 * a batch of several on several threads also as its lines side by side, as the worker may run it,
 * and the cheaper way counts) and its process CPU time is divided by the lines. CPU-time ratios hold up on a noisy machine far
 * better than throughput.
 */
import { randomUUID } from "node:crypto";
import { loadavg } from "node:os";
import amqp, { type ConsumeMessage } from "amqplib";
import { names, type InferenceTask, type WireTensor } from "../../runtime/shared/contracts/index.js";
import { encodeTaskBody, type EncodedBody } from "../../runtime/shared/task-body.js";
import { encodeTensor } from "../../runtime/shared/tensors.js";
import { imageToTensor } from "../../runtime/worker/processors/image-to-tensor.js";
import { pinProcesses } from "../lib/cpu-pinning.js";
import { onInterrupt, say } from "../lib/env.js";
import { cpuMs, threadCpuMs } from "../lib/processes.js";
import { round } from "../lib/stats.js";
import { Installation, ocrModel } from "./end-to-end.js";
import { openModelCpu } from "./raw-model.js";

export type TaskBody = "png" | "tensor";

export interface WorkerCpuOptions {
  png: Buffer;
  batch: number;
  threads: number;
  /** Lines (one per task) per worker block, after a warm-up. */
  lines: number;
  /** Alternating rounds of (model block, worker block); the ratio is the median of the rounds'. */
  rounds: number;
  body: TaskBody;
  /** taskset cpu list for the worker and the in-process model run (dedicated-cores mode). */
  cpus?: string;
  /** Write a V8 CPU profile of the worker here (`node --cpu-prof`). */
  profileDir?: string;
  /** Seconds of each in-process model block. */
  modelSeconds: number;
}

export interface WorkerCpuRound {
  /** Worker process CPU time (all threads) per line. */
  workerCpuMsPerLine: number;
  /** The same by thread: main, the busiest other one (the model's), the rest (V8, libuv). */
  workerThreadsMsPerLine: Record<string, number>;
  workerLinesPerSecond: number;
  /** This process's CPU time per line running the model alone just before. */
  modelCpuMsPerLine: number;
  modelLinesPerSecond: number;
  ratio: number;
}

export interface WorkerCpuResult {
  body: TaskBody;
  batch: number;
  threads: number;
  cpus?: string;
  lines: number;
  failed: number;
  rounds: WorkerCpuRound[];
  /** Median over the rounds of worker CPU per line / model CPU per line; the target is <= 1.1. */
  ratio: number;
  /** The round with that median ratio. */
  median: WorkerCpuRound;
  loadAverage: number[];
}

/**
 * The model's input tensor for the line (what a client sending tensors would send), as the gateway
 * carries it: its raw bytes, which the task body frames (dictionary-encoded) instead of base64.
 */
export function lineTensor(png: Buffer): WireTensor {
  const context = { dictionary: () => [], settings: {}, parameters: {} };
  const [x] = imageToTensor.run(
    [{ name: "image", datatype: "BYTES", shape: [1], data: [new Uint8Array(png)] }],
    context,
  );
  return encodeTensor(x!, { raw: true });
}

/** The task as the gateway publishes it: the same codec (framed when an input carries raw bytes). */
function taskBody(input: WireTensor): EncodedBody {
  const task: InferenceTask = {
    requestId: randomUUID(),
    tenant: "bench",
    target: { kind: "model", name: "ocr" },
    route: [{ step: "ocr", model: "ocr" }],
    inputs: [input],
    reservedTokens: 100,
    inputTokens: 0,
    outputTokens: 0,
    submittedAt: Date.now(),
    steps: [],
  };
  return encodeTaskBody(task);
}

export async function workerCpu(options: WorkerCpuOptions): Promise<WorkerCpuResult> {
  const install = new Installation({ models: [ocrModel(options.batch, options.threads)], tenants: [] });
  const unregister = onInterrupt(() => install.teardown(["ocr"]));
  const input =
    options.body === "png"
      ? encodeTensor({ name: "image", datatype: "BYTES", shape: [1], data: [options.png] })
      : lineTensor(options.png);
  const pinned = <T>(fn: () => Promise<T>) => {
    const restore = options.cpus ? pinProcesses([process.pid], options.cpus) : () => undefined;
    return fn().finally(restore);
  };
  const model = await pinned(() => openModelCpu(options.png, options.batch, options.threads));
  try {
    const worker = await install.start(
      "worker",
      { TURNPIKE_MODEL: "ocr", TURNPIKE_WORKER_ID: "bench-cpu", TURNPIKE_LOG_LEVEL: "info" },
      {
        cpus: options.cpus,
        nodeArgs: options.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${options.profileDir}`] : [],
      },
    );
    const connection = await amqp.connect(install.urls.amqpUrl);
    const failed = { count: 0 };
    try {
      const channel = await connection.createConfirmChannel();
      const n = names(install.prefix);
      let done = 0;
      let wake: (() => void) | undefined;
      // A batch's results come as one result-batch message (a JSON array), a lone one alone.
      const onResults = (message: ConsumeMessage | null) => {
        if (!message) return;
        const body = JSON.parse(message.content.toString("utf8")) as unknown;
        const results = (Array.isArray(body) ? body : [body]) as { status?: string }[];
        failed.count += results.filter((r) => r.status !== "succeeded").length;
        channel.ack(message);
        done += results.length;
        wake?.();
      };
      await channel.consume(n.resultsQueue, onResults);
      await channel.consume(n.resultBatchQueue, onResults);
      const send = () => {
        const body = taskBody(input);
        channel.sendToQueue(n.modelQueue("ocr"), body.content, {
          persistent: true,
          contentType: body.contentType,
        });
      };
      // Enough in flight for full batches and the next one waiting, never an unbounded backlog.
      const window = options.batch * 4;
      const drive = async (count: number) => {
        const first = done;
        let sent = 0;
        while (done - first < count) {
          while (sent < count && sent - (done - first) < window) {
            send();
            sent++;
          }
          await new Promise<void>((resolve) => (wake = resolve));
        }
      };
      await drive(options.batch * 6); // warm-up: JIT, allocations for the batch shape
      const rounds: WorkerCpuRound[] = [];
      for (let r = 0; r < options.rounds; r++) {
        // The model alone right before the worker: the host's speed drifts over minutes.
        const alone = await pinned(() => model.measure(options.modelSeconds));
        const before = cpuMs(worker.handle.pid);
        const threadsBefore = threadCpuMs(worker.handle.pid);
        const started = Date.now();
        await drive(options.lines);
        const seconds = (Date.now() - started) / 1000;
        const workerCpuMs = cpuMs(worker.handle.pid) - before;
        const threads = threadShares(
          worker.handle.pid,
          threadsBefore,
          threadCpuMs(worker.handle.pid),
          options.lines,
        );
        const workerCpuMsPerLine = round(workerCpuMs / options.lines, 2);
        const modelCpuMsPerLine = round(alone.cpuMs / alone.lines, 2);
        rounds.push({
          workerCpuMsPerLine,
          workerThreadsMsPerLine: threads,
          workerLinesPerSecond: round(options.lines / seconds),
          modelCpuMsPerLine,
          modelLinesPerSecond: round(alone.lines / alone.seconds),
          ratio: round(workerCpuMsPerLine / modelCpuMsPerLine, 3),
        });
        say(
          `worker cpu (${options.body}, batch ${options.batch}, ${options.threads} threads${options.cpus ? `, cpus ${options.cpus}` : ""}): ` +
            `worker ${workerCpuMsPerLine} ms/line (${JSON.stringify(threads)}), model ${modelCpuMsPerLine} ms/line, ` +
            `ratio ${rounds.at(-1)!.ratio}; load ${loadavg()
              .map((l) => round(l, 2))
              .join(" ")}`,
        );
      }
      await install.stop(worker.handle); // writes the profile, if any
      const median = [...rounds].sort((a, b) => a.ratio - b.ratio)[Math.floor(rounds.length / 2)]!;
      return {
        body: options.body,
        batch: options.batch,
        threads: options.threads,
        cpus: options.cpus,
        lines: options.lines,
        failed: failed.count,
        rounds,
        ratio: median.ratio,
        median,
        loadAverage: loadavg().map((l) => round(l, 2)),
      };
    } finally {
      await connection.close().catch(() => undefined);
    }
  } finally {
    unregister();
    await model.release();
    await install.teardown(["ocr"]);
  }
}

/** CPU per line of the main thread, the busiest other thread (the model's) and all the others. */
function threadShares(
  pid: number,
  before: Map<number, number>,
  after: Map<number, number>,
  lines: number,
): Record<string, number> {
  const spent = [...after].map(([tid, ms]) => [tid, ms - (before.get(tid) ?? 0)] as const);
  const main = spent.find(([tid]) => tid === pid)?.[1] ?? 0;
  const others = spent.filter(([tid]) => tid !== pid).sort((a, b) => b[1] - a[1]);
  const model = others[0]?.[1] ?? 0;
  const rest = others.slice(1).reduce((a, [, ms]) => a + ms, 0);
  return { main: round(main / lines, 2), model: round(model / lines, 2), other: round(rest / lines, 2) };
}
