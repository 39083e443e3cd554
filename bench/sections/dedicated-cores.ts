/**
 * Section 2b, end to end on dedicated cores, the way a cluster runs it: the OCR worker alone on
 * one core (taskset) with onnxruntime on one intra-op thread, everything else on the other core
 * (gateway, collector, the load generator, this process, and for the run the backing services:
 * RabbitMQ, Redis and PostgreSQL are re-pinned with `taskset -p` and put back afterwards, because
 * other people's work shares them). The physical limit is the model in this process pinned to the
 * worker's core with the same single thread, at every batch size, before and after the loads.
 *
 * On a machine shared with other work, "dedicated" only means the benchmark's own processes do not
 * share a core: other people's processes still run on both.
 */
import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { canPin, pinProcesses } from "../lib/cpu-pinning.js";
import { onInterrupt, say, sleep } from "../lib/env.js";
import { runLoad } from "../lib/autocannon.js";
import { CpuMeter, cpuMs, cpuWindow, pidsOf, threadCpuMs } from "../lib/processes.js";
import { settle } from "../lib/settle.js";
import { round } from "../lib/stats.js";
import { API_KEY, Installation, ocrModel, TENANT, type RunResult } from "./end-to-end.js";
import { openModelCpu, rawModel, RAW_BATCH_SIZES, type RawModelResult } from "./raw-model.js";
import { ocrPngBody } from "../../hack/run/sample-request.js";

/** The worker's core and everyone else's. */
export const WORKER_CPUS = "1";
export const OTHER_CPUS = "0";

export interface DedicatedOptions {
  png: Buffer;
  rawSeconds: number;
  ocrConcurrency: number[];
  ocrSeconds: number;
}

export interface DedicatedResult {
  /** Why the mode did not run (fewer than 2 cores, no taskset), when it did not. */
  skipped?: string;
  workerCpus: string;
  otherCpus: string;
  threads: number;
  /** The model alone on the worker's core, every batch size, before the loads. */
  raw?: RawModelResult;
  /** Best-batch throughput before and after the loads; the ratio uses the higher. */
  rawBestLinesPerSecond: number[];
  rawLimitLinesPerSecond: number;
  /** The batch the worker runs (see workerBatch); the raw limit is the fastest batch's. */
  bestBatch: number;
  /** The model's own CPU time per line at the best batch, pinned and threaded like the worker. */
  modelCpuMsPerLine: number;
  ocr: (RunResult & {
    concurrency: number;
    ratio: number;
    /**
     * The model alone on the worker's core at the worker's batch right before this load, and the
     * ratio to it: the host's speed drifts by +-10% over minutes, so this pairs each load with the
     * limit of the same moment (`ratio` stays against the fastest of the before/after passes).
     */
    adjacentRawLinesPerSecond: number;
    adjacentRatio: number;
    /** Worker CPU per line over the middle 60% of the run, by the worker's own count of lines. */
    workerCpuMsPerLine: number;
    workerToModelCpu: number;
    /** Where the ratio goes, over the same middle 60%: see {@link MidRun}. */
    mid: MidRun;
  })[];
  /** What was re-pinned for the runs (names of the shared services). */
  repinned: string[];
  loadAverage: number[];
}

/**
 * What tells why end to end falls short of raw, measured over the middle 60% of a run: how busy each
 * core was (all processes; the worker's core below ~95% means the worker waited for work, the other
 * core near 100% means the gateway/broker/load generator ran out), the worker's mean batch, and its
 * CPU per line by thread (main: AMQP, JSON, PNG decoding; model: onnxruntime; other: V8 helpers).
 */
export interface MidRun {
  workerCoreBusyPercent: number;
  otherCoreBusyPercent: number;
  meanBatch: number;
  workerThreadsMsPerLine: { main: number; model: number; other: number };
}

/** Busy and total jiffies of each core, from /proc/stat (cpuN lines). */
function coreJiffies(): Map<string, { busy: number; total: number }> {
  const out = new Map<string, { busy: number; total: number }>();
  for (const line of readFileSync("/proc/stat", "utf8").split("\n")) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const values = m[2]!.trim().split(/\s+/).slice(0, 8).map(Number);
    const total = values.reduce((a, b) => a + b, 0);
    out.set(m[1]!, { busy: total - values[3]! - values[4]!, total });
  }
  return out;
}

function coreBusyPercent(
  before: ReturnType<typeof coreJiffies>,
  after: ReturnType<typeof coreJiffies>,
  cpu: string,
) {
  const a = after.get(cpu);
  const b = before.get(cpu);
  if (!a || !b || a.total <= b.total) return 0;
  return round(((a.busy - b.busy) / (a.total - b.total)) * 100, 1);
}

/** Lines and batches the worker has run, from its batch-size histogram. */
export async function batchCounts(workerUrl: string): Promise<{ lines: number; batches: number }> {
  const text = await (await fetch(`${workerUrl}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const read = (name: string) =>
    Number(new RegExp(`^turnpike_batch_size_${name}(?:\\{[^}]*\\})?\\s+(\\S+)$`, "m").exec(text)?.[1] ?? 0);
  return { lines: read("sum"), batches: read("count") };
}

/** Main thread, busiest other thread (the model's) and the rest, per line, between two samples. */
export function threadSplit(
  pid: number,
  before: Map<number, number>,
  after: Map<number, number>,
  lines: number,
) {
  const spent = [...after].map(([tid, ms]) => [tid, ms - (before.get(tid) ?? 0)] as const);
  const others = spent.filter(([tid]) => tid !== pid).sort((a, b) => b[1] - a[1]);
  const per = (ms: number) => round(ms / Math.max(1, lines), 2);
  return {
    main: per(spent.find(([tid]) => tid === pid)?.[1] ?? 0),
    model: per(others[0]?.[1] ?? 0),
    other: per(others.slice(1).reduce((a, [, ms]) => a + ms, 0)),
  };
}

const SERVICES = { rabbitmq: "beam.smp", redis: "redis-server", postgres: "postgres" };

/**
 * The batch the worker runs: the largest within 5% of the fastest raw figure, as one batch or as
 * its lines (line-pool.ts). One raw pass spreads about that much, and a larger batch shares the
 * worker's per-task cost (at batch 1 it was 1.07-1.19x the model's CPU per line, 1.02-1.06x at
 * batch 4). The ratio stays against the fastest.
 */
export function workerBatch(raw: RawModelResult): number {
  const all = [...raw.batches, ...(raw.workerLines ?? [])];
  const near = all.filter((b) => b.linesPerSecond >= raw.fastest.linesPerSecond * 0.95);
  return Math.max(raw.fastest.batch, ...near.map((b) => b.batch));
}

function profileArgs(dir: string | undefined): string[] {
  return dir ? ["--cpu-prof", `--cpu-prof-dir=${dir}`] : [];
}

/** Runs `fn` with this process's threads pinned to `cpus`, restoring them after. */
async function pinnedSelf<T>(cpus: string, fn: () => Promise<T>): Promise<T> {
  const restore = pinProcesses([process.pid], cpus);
  try {
    return await fn();
  } finally {
    restore();
  }
}

export async function dedicatedCores(options: DedicatedOptions): Promise<DedicatedResult> {
  const empty = {
    workerCpus: WORKER_CPUS,
    otherCpus: OTHER_CPUS,
    threads: 1,
    rawBestLinesPerSecond: [],
    rawLimitLinesPerSecond: 0,
    bestBatch: 0,
    modelCpuMsPerLine: 0,
    ocr: [],
    repinned: [],
    loadAverage: loadavg().map((l) => round(l, 2)),
  };
  if (cpus().length < 2) return { ...empty, skipped: "needs 2 cores" };
  if (!canPin()) return { ...empty, skipped: "taskset is not available" };

  say(`dedicated cores: the model alone on cpu ${WORKER_CPUS}, 1 thread`);
  const raw = await pinnedSelf(WORKER_CPUS, () =>
    rawModel(options.png, options.rawSeconds, RAW_BATCH_SIZES, 1, { lines: true }),
  );
  const bestBatch = workerBatch(raw);
  const modelCpuMsPerLine = await pinnedSelf(WORKER_CPUS, async () => {
    const model = await openModelCpu(options.png, bestBatch, 1);
    try {
      const block = await model.measure(options.rawSeconds);
      return round(block.cpuMs / block.lines, 2);
    } finally {
      await model.release();
    }
  });

  const install = new Installation({ models: [ocrModel(bestBatch, 1)], tenants: [{ name: TENANT }] });
  const unregister = onInterrupt(() => install.teardown(["ocr"]));
  const ocr: DedicatedResult["ocr"] = [];
  let restoreServices = () => undefined as void;
  let restoreSelf = () => undefined as void;
  try {
    await install.seedTenant();
    const other = { cpus: OTHER_CPUS };
    const collector = await install.start("collector", {}, other);
    const worker = await install.start(
      "worker",
      { TURNPIKE_MODEL: "ocr", TURNPIKE_WORKER_ID: "bench-dedicated" },
      // TURNPIKE_BENCH_WORKER_PROFILE=<dir> writes the worker's CPU profile there (node --cpu-prof).
      { cpus: WORKER_CPUS, nodeArgs: profileArgs(process.env.TURNPIKE_BENCH_WORKER_PROFILE) },
    );
    const gateway = await install.start(
      "gateway",
      { TURNPIKE_RATE_LIMIT_PER_IP: "1000000000", TURNPIKE_RATE_LIMIT_PER_TENANT: "1000000000" },
      other,
    );
    const servicePids = Object.values(SERVICES).flatMap((comm) => pidsOf(comm));
    restoreServices = pinProcesses(servicePids, OTHER_CPUS);
    restoreSelf = pinProcesses([process.pid], OTHER_CPUS);
    const meter = new CpuMeter()
      .track("gateway", () => [gateway.handle.pid])
      .track("worker", () => [worker.handle.pid])
      .track("collector", () => [collector.handle.pid])
      .trackServices();
    const body = ocrPngBody(options.png);
    const load = {
      url: `${gateway.url}/v2/models/ocr/infer`,
      body,
      headers: { authorization: `Bearer ${API_KEY}` },
    };
    await runLoad({ ...load, connections: 8, durationSeconds: 2, cpus: OTHER_CPUS }); // warm-up
    for (const concurrency of options.ocrConcurrency) {
      // The requests the last load left in flight are worked off first: the raw run must not share
      // the worker's core with them, nor they with it (the worker would time its way of running a
      // batch slower and run the slower way into the next load; bench/README.md, "Fourteenth round").
      await settle(meter, ["gateway", "worker", "collector"]);
      const adjacent = await pinnedSelf(WORKER_CPUS, () =>
        rawModel(options.png, options.rawSeconds, [bestBatch], 1, { lines: true }),
      );
      const adjacentRawLinesPerSecond = adjacent.fastest.linesPerSecond;
      const window = cpuWindow(meter);
      const from = Date.now();
      const running = runLoad({
        ...load,
        connections: concurrency,
        durationSeconds: options.ocrSeconds,
        cpus: OTHER_CPUS,
      });
      // The worker's CPU per line from the middle of the run (its own count of lines run), so
      // requests in flight at the start and the end do not count against it.
      await sleep(options.ocrSeconds * 200);
      const first = {
        cpu: cpuMs(worker.handle.pid),
        counts: await batchCounts(worker.url),
        threads: threadCpuMs(worker.handle.pid),
        cores: coreJiffies(),
      };
      await sleep(options.ocrSeconds * 600);
      const cores = coreJiffies();
      const threads = threadCpuMs(worker.handle.pid);
      const counts = await batchCounts(worker.url);
      const lines = counts.lines - first.counts.lines;
      const workerCpuMsPerLine = round((cpuMs(worker.handle.pid) - first.cpu) / Math.max(1, lines), 2);
      const mid: MidRun = {
        workerCoreBusyPercent: coreBusyPercent(first.cores, cores, WORKER_CPUS),
        otherCoreBusyPercent: coreBusyPercent(first.cores, cores, OTHER_CPUS),
        meanBatch: round(lines / Math.max(1, counts.batches - first.counts.batches), 2),
        workerThreadsMsPerLine: threadSplit(worker.handle.pid, first.threads, threads, lines),
      };
      const result = await running;
      const to = Date.now();
      const cpu = window.end();
      const stages = await install.stages("ocr", from, to);
      const perRequest = Object.fromEntries(
        Object.entries(cpu.cpuMs).map(([k, v]) => [k, round(v / Math.max(1, result.ok), 3)]),
      );
      const workerToModelCpu = round(workerCpuMsPerLine / modelCpuMsPerLine, 3);
      say(
        `dedicated ocr c=${concurrency}: ${result.okPerSecond} ok/s (raw right before: ${adjacentRawLinesPerSecond} lines/s), p50 ${result.latency.p50Ms} ms, ` +
          `worker ${workerCpuMsPerLine} CPU ms/line (${workerToModelCpu}x the model's; ${JSON.stringify(mid.workerThreadsMsPerLine)}), ` +
          `mid-run: cpu ${WORKER_CPUS} ${mid.workerCoreBusyPercent}% busy, cpu ${OTHER_CPUS} ${mid.otherCoreBusyPercent}%, ` +
          `mean batch ${mid.meanBatch}; foreign ${cpu.foreignPercent}%`,
      );
      ocr.push({
        label: `ocr dedicated c=${concurrency}`,
        load: result,
        cpuMsPerRequest: perRequest,
        machineBusyPercent: cpu.busyPercent,
        foreignCpuPercent: cpu.foreignPercent,
        stages,
        concurrency,
        ratio: 0, // set below, against the best raw measurement
        adjacentRawLinesPerSecond,
        adjacentRatio: round(result.okPerSecond / adjacentRawLinesPerSecond, 3),
        workerCpuMsPerLine,
        workerToModelCpu,
        mid,
      });
    }
  } finally {
    restoreSelf();
    restoreServices();
    unregister();
    await install.teardown(["ocr"]);
  }
  const after = await pinnedSelf(WORKER_CPUS, () =>
    rawModel(options.png, options.rawSeconds, [bestBatch], 1, { lines: true }),
  );
  const rawBestLinesPerSecond = [raw.fastest.linesPerSecond, after.fastest.linesPerSecond];
  const limit = Math.max(...rawBestLinesPerSecond);
  for (const o of ocr) o.ratio = round(o.load.okPerSecond / limit, 3);
  return {
    workerCpus: WORKER_CPUS,
    otherCpus: OTHER_CPUS,
    threads: 1,
    raw,
    rawBestLinesPerSecond,
    rawLimitLinesPerSecond: limit,
    bestBatch,
    modelCpuMsPerLine,
    ocr,
    repinned: Object.keys(SERVICES),
    loadAverage: loadavg().map((l) => round(l, 2)),
  };
}
