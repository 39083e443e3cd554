/**
 * Section 5, the peer users would pick instead: KServe's Python ModelServer (PyPI kserve, a
 * 40-line model class in bench/peers/kserve_ocr.py: the same PP-OCRv4 recognition model in PyPI
 * onnxruntime with 2 threads, greedy CTC decoding to text, no batching) next to Turnpike's OCR
 * model end to end (gateway -> RabbitMQ -> worker -> RabbitMQ -> collector -> PostgreSQL, durable,
 * recorded and charged), both on 127.0.0.1 and sent the same Open Inference Protocol v2 body
 * (input `x`, FP32 [1,3,48,320], the benchmark's rendered line): JSON numbers, or with
 * `encoding: "binary"` the protocol's binary tensor extension (a JSON header, then the tensor's
 * raw little-endian bytes), which both servers read. Runs alternate between the two
 * (Turnpike first in odd rounds, KServe first in even ones) at each concurrency, so a slow phase of
 * the shared machine hurts both alike; each run starts once both systems are idle
 * (bench/lib/settle.ts). The Python environment is made by bench/peers/kserve-setup.sh (cached in
 * ~/.cache/turnpike/venv-kserve; not part of `make test`).
 */
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../hack/control-plane.js";
import { imageToTensor } from "../../runtime/worker/processors/image-to-tensor.js";
import { ocrModelPaths } from "../../runtime/worker/tasks/ocr/ocr-models.js";
import { runLoad, type LoadResult } from "../lib/autocannon.js";
import { onInterrupt, repoRoot, say } from "../lib/env.js";
import type { PeerBatch } from "../lib/peer-batch.js";
import { pinProcesses } from "../lib/cpu-pinning.js";
import {
  CpuMeter,
  cpuWindow,
  pidsOf,
  startProcess,
  waitHealthy,
  type ChildHandle,
} from "../lib/processes.js";
import { settle } from "../lib/settle.js";
import { round } from "../lib/stats.js";
import { API_KEY, Installation, ocrModel } from "./end-to-end.js";

type System = "turnpike" | "kserve";

/** How the tensor travels: JSON numbers, or OIP's binary tensor extension. */
export type PeerEncoding = "json" | "binary";

/** Turnpike's processes in the CPU split, in the order the report prints them. */
/** Turnpike's own roles, which keep working off a run's last requests after its load ends. */
const TURNPIKE_ROLES = ["gateway", "worker", "collector"];
export const TURNPIKE_PROCESSES = [...TURNPIKE_ROLES, "rabbitmq", "redis", "postgres"];

export interface PeerRun {
  system: System;
  round: number;
  load: LoadResult;
  /** CPU ms per answered request of the system's own processes (Turnpike: its roles and services). */
  cpuMsPerRequest: number;
  /** Turnpike runs: the same CPU split by process (gateway, worker, collector and each service). */
  cpuMsByProcess?: Record<string, number>;
  foreignCpuPercent: number;
  /**
   * CPU ms of the other system over this run (KServe's process during Turnpike's runs, Turnpike's
   * roles during KServe's): work one left behind that the other's run pays for.
   */
  otherSystemCpuMs?: number;
  /** How long the run waited for both systems to finish the previous run's requests (ms). */
  settledMs?: number;
  /** Turnpike runs: from the records of the requests submitted during the run (worker batches). */
  batches?: { records: number; meanBatchSize: number; inferMsPerLine: number; queueMsP50: number };
}

export interface PeerLevel {
  concurrency: number;
  runs: PeerRun[];
  /** Answered requests per second, mean over the rounds. */
  turnpikePerSecond: number;
  kservePerSecond: number;
  /** Medians over the rounds of each run's p50 (ms). */
  turnpikeP50Ms: number;
  kserveP50Ms: number;
  turnpikeP99Ms: number;
  kserveP99Ms: number;
  /** Turnpike / KServe throughput. */
  throughputRatio: number;
  /** Turnpike p50 minus KServe p50 (ms). */
  p50DifferenceMs: number;
}

export interface KserveResult {
  /** Why the section did not run (e.g. no Python 3), when it did not. */
  skipped?: string;
  /** The body both systems got (absent in results from before binary bodies: JSON). */
  encoding?: PeerEncoding;
  bodyBytes: number;
  /** The text each system answered for the body, as a check that both ran the model. */
  answers: Record<System, string>;
  seconds: number;
  rounds: number;
  /** The OCR worker's maxBatchSize in these runs, and why that size. */
  batch?: PeerBatch;
  levels: PeerLevel[];
  /** Set in dedicated-cores mode. */
  dedicated?: { workerCpus: string; otherCpus: string };
}

export interface KserveOptions {
  png: Buffer;
  concurrency: number[];
  seconds: number;
  rounds: number;
  /** Turnpike's OCR worker's maxBatchSize and why (bench/lib/peer-batch.ts). */
  batch: PeerBatch;
  /** The body both systems get; JSON by default. */
  encoding?: PeerEncoding;
  /**
   * Dedicated cores (section 2b's setup): KServe alone on the worker's core and Turnpike's worker
   * alone on it in turn, each with one onnxruntime thread; the gateway, collector, load generator
   * and the backing services (re-pinned for the runs, then restored) on the other core.
   */
  dedicated?: { workerCpus: string; otherCpus: string };
}

/** Runs bench/peers/kserve-setup.sh; its last output line is the venv's python. */
async function setUpKserve(): Promise<string> {
  const script = join(repoRoot, "bench/peers/kserve-setup.sh");
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [script], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (err += c.toString("utf8")));
    child.on("error", reject);
    child.on("exit", (code) => {
      const python = out.trim().split("\n").pop();
      if (code === 0 && python) resolve(python);
      else reject(new Error(`kserve-setup.sh failed (${code}): ${err.slice(-1500)}`));
    });
  });
}

/** The OIP v2 body both systems get: the rendered line as the model's own input tensor. */
export function tensorBody(png: Buffer) {
  const context = { dictionary: () => [], settings: {}, parameters: {} };
  const [x] = imageToTensor.run(
    [{ name: "image", datatype: "BYTES", shape: [1], data: [new Uint8Array(png)] }],
    context,
  );
  // Four decimals: the pixels are 8-bit, so nothing the model can see is lost.
  const data = Array.from(x!.data as Float32Array, (v) => Math.round(v * 10_000) / 10_000);
  return { inputs: [{ name: "x", datatype: "FP32", shape: x!.shape, data }] };
}

/**
 * The same tensor as {@link tensorBody} in OIP's binary tensor extension: a JSON header naming the
 * input and its `binary_data_size`, then the FP32 values as little-endian bytes, the header's length
 * in `Inference-Header-Content-Length`.
 */
export function binaryTensorBody(png: Buffer): { bytes: Buffer; headers: Record<string, string> } {
  const [input] = tensorBody(png).inputs;
  const raw = Buffer.alloc(input!.data.length * 4);
  input!.data.forEach((value, i) => raw.writeFloatLE(value, i * 4));
  const header = Buffer.from(
    JSON.stringify({
      inputs: [
        {
          name: input!.name,
          datatype: input!.datatype,
          shape: input!.shape,
          parameters: { binary_data_size: raw.length },
        },
      ],
    }),
  );
  return {
    bytes: Buffer.concat([header, raw]),
    headers: {
      "content-type": "application/octet-stream",
      "inference-header-content-length": String(header.length),
    },
  };
}

/** The body and its headers for `encoding`. */
function peerBody(png: Buffer, encoding: PeerEncoding): { bytes: Buffer; headers: Record<string, string> } {
  if (encoding === "binary") return binaryTensorBody(png);
  return {
    bytes: Buffer.from(JSON.stringify(tensorBody(png))),
    headers: { "content-type": "application/json" },
  };
}

async function answerOf(url: string, body: Buffer, headers: Record<string, string>): Promise<string> {
  const response = await fetch(url, {
    method: "POST",
    headers,
    body,
    signal: AbortSignal.timeout(60_000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${text.slice(0, 500)}`);
  const outputs = (JSON.parse(text) as { outputs?: { data?: unknown[] }[] }).outputs ?? [];
  return String(outputs[0]?.data?.[0] ?? "");
}

/** The worker's batches as the records of the requests submitted since `since` tell them. */
async function batchesOf(install: Installation, since: Date): Promise<PeerRun["batches"]> {
  const { rows } = await install.pool.query(
    `SELECT count(*)::int AS records, avg((steps->0->>'batchSize')::float) AS batch,
            sum(infer_ms) / nullif(sum((steps->0->>'batchSize')::float), 0) AS per_line,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY queue_ms) AS queue_p50
       FROM "${install.schema}".requests WHERE submitted_at >= $1`,
    [since],
  );
  const r = rows[0] as Record<string, number | null>;
  return {
    records: Number(r.records ?? 0),
    meanBatchSize: round(Number(r.batch ?? 0), 2),
    inferMsPerLine: round(Number(r.per_line ?? 0), 1),
    queueMsP50: round(Number(r.queue_p50 ?? 0), 0),
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

export async function kservePeer(options: KserveOptions): Promise<KserveResult> {
  const encoding = options.encoding ?? "json";
  const { bytes: body, headers: bodyHeaders } = peerBody(options.png, encoding);
  const bodyBytes = body.length;
  const empty = {
    encoding,
    bodyBytes,
    answers: { turnpike: "", kserve: "" },
    seconds: 0,
    rounds: 0,
    levels: [],
  };
  let python: string;
  try {
    say("kserve: preparing the Python environment (bench/peers/kserve-setup.sh)");
    python = await setUpKserve();
  } catch (error) {
    say(`kserve: skipped, ${(error as Error).message}`);
    return { ...empty, skipped: (error as Error).message.split("\n")[0]! };
  }

  const install = new Installation({
    models: [ocrModel(options.batch.size, options.dedicated ? 1 : 2)],
    tenants: [{ name: "bench" }],
  });
  let kserve: ChildHandle | undefined;
  let restorePins = () => undefined as void;
  const unregister = onInterrupt(async () => {
    await kserve?.stop(2000);
    await install.teardown(["ocr"]);
  });
  try {
    await install.seedTenant();
    say(`kserve: Turnpike prefix ${install.prefix}; starting collector, OCR worker, gateway and KServe`);
    say(`kserve: Turnpike's OCR worker at maxBatchSize ${options.batch.size}: ${options.batch.why}`);
    const pinned = options.dedicated;
    const other = { cpus: pinned?.otherCpus };
    const collector = await install.start("collector", {}, other);
    const worker = await install.start(
      "worker",
      { TURNPIKE_MODEL: "ocr", TURNPIKE_WORKER_ID: "bench-peer" },
      { cpus: pinned?.workerCpus },
    );
    const gateway = await install.start(
      "gateway",
      { TURNPIKE_RATE_LIMIT_PER_IP: "1000000000", TURNPIKE_RATE_LIMIT_PER_TENANT: "1000000000" },
      other,
    );
    const port = await freePort();
    const paths = ocrModelPaths();
    kserve = startProcess(
      "kserve",
      pinned ? "taskset" : python,
      [
        ...(pinned ? ["-c", pinned.workerCpus, python] : []),
        join(repoRoot, "bench/peers/kserve_ocr.py"),
        ...["--threads", pinned ? "1" : "2"],
        ...["--model-file", paths.recognition, "--dictionary", paths.dictionary, "--model_name", "ocr"],
        ...["--http_port", String(port), "--enable_grpc", "false", "--workers", "1"],
      ],
      { PYTHONUNBUFFERED: "1", TMPDIR: mkdtempSync(join(tmpdir(), "turnpike-kserve-")) },
    );
    const kserveUrl = `http://127.0.0.1:${port}`;
    await waitHealthy(kserve, `${kserveUrl}/v2/models/ocr/ready`);
    const handle = kserve;
    const meter = new CpuMeter()
      .track("gateway", () => [gateway.handle.pid])
      .track("worker", () => [worker.handle.pid])
      .track("collector", () => [collector.handle.pid])
      .track("kserve", () => [handle.pid])
      .trackServices();

    const targets: Record<System, { url: string; headers: Record<string, string> }> = {
      turnpike: {
        url: `${gateway.url}/v2/models/ocr/infer`,
        headers: { ...bodyHeaders, authorization: `Bearer ${API_KEY}` },
      },
      kserve: { url: `${kserveUrl}/v2/models/ocr/infer`, headers: bodyHeaders },
    };
    const answers = {
      turnpike: await answerOf(targets.turnpike.url, body, targets.turnpike.headers),
      kserve: await answerOf(targets.kserve.url, body, targets.kserve.headers),
    };
    say(
      `kserve: answers: turnpike "${answers.turnpike}", kserve "${answers.kserve}"; ${encoding} body ` +
        `${bodyBytes} bytes`,
    );
    for (const system of ["turnpike", "kserve"] as const) {
      await runLoad({ ...targets[system], body, connections: 8, durationSeconds: 2, cpus: other.cpus }); // warm-up
    }
    if (pinned) {
      restorePins = pinProcesses(
        ["beam.smp", "redis-server", "postgres"].flatMap((comm) => pidsOf(comm)).concat(process.pid),
        pinned.otherCpus,
      );
    }

    const levels: PeerLevel[] = [];
    for (const concurrency of options.concurrency) {
      const runs: PeerRun[] = [];
      for (let r = 1; r <= options.rounds; r++) {
        const order: System[] = r % 2 ? ["turnpike", "kserve"] : ["kserve", "turnpike"];
        for (const system of order) {
          // Both systems idle first: a run that ended with `concurrency` requests inside a system
          // leaves them to be worked off, and the next run (often the other system's) paid for
          // them: the second Turnpike round at 32 connections shared its start with KServe's last
          // 32 requests. BENCH_PEER_SETTLE=0 runs back to back as before (for comparisons).
          const settled =
            process.env.BENCH_PEER_SETTLE === "0"
              ? undefined
              : await settle(meter, [...TURNPIKE_ROLES, "kserve"]);
          const startedAt = new Date();
          const window = cpuWindow(meter);
          const load = await runLoad({
            ...targets[system],
            body,
            connections: concurrency,
            cpus: other.cpus,
            // Requests still in flight when a run ends are not counted: at 32 connections each
            // takes seconds here, so a run lasts long enough for many to finish.
            durationSeconds: Math.max(options.seconds, Math.ceil(concurrency / 4)),
          });
          const cpu = window.end();
          const batches = system === "turnpike" ? await batchesOf(install, startedAt) : undefined;
          const perRequest = (k: string) => round((cpu.cpuMs[k] ?? 0) / Math.max(1, load.ok), 2);
          const split = Object.fromEntries(TURNPIKE_PROCESSES.map((k) => [k, perRequest(k)]));
          const own =
            system === "kserve"
              ? perRequest("kserve")
              : round(
                  Object.values(split).reduce((a, v) => a + v, 0),
                  2,
                );
          const otherSystemCpuMs = Math.round(
            system === "kserve"
              ? TURNPIKE_ROLES.reduce((a, k) => a + (cpu.cpuMs[k] ?? 0), 0)
              : (cpu.cpuMs.kserve ?? 0),
          );
          runs.push({
            system,
            round: r,
            load,
            cpuMsPerRequest: own,
            ...(system === "turnpike" ? { cpuMsByProcess: split } : {}),
            foreignCpuPercent: cpu.foreignPercent,
            otherSystemCpuMs,
            ...(settled ? { settledMs: settled.waitedMs } : {}),
            ...(batches ? { batches } : {}),
          });
          say(
            `kserve: ${system} ${encoding} c=${concurrency} round ${r}: ${load.okPerSecond} ok/s, p50 ` +
              `${load.latency.p50Ms} ms, p99 ${load.latency.p99Ms} ms, other ${load.other}` +
              (load.other ? ` (${JSON.stringify(load.statusCodes)}, ${load.errors} errors)` : "") +
              ", " +
              `CPU ms/req ${own}${system === "turnpike" ? ` (worker ${split.worker})` : ""}, ` +
              `the other system's CPU ${otherSystemCpuMs} ms, foreign ${cpu.foreignPercent}%` +
              (settled ? `, settled ${settled.waitedMs} ms before` : "") +
              (batches
                ? `; records ${batches.records}: batch ${batches.meanBatchSize}, model ` +
                  `${batches.inferMsPerLine} ms/line, queue p50 ${batches.queueMsP50} ms`
                : ""),
          );
        }
      }
      const of = (system: System) => runs.filter((run) => run.system === system);
      const mean = (system: System) =>
        round(of(system).reduce((a, run) => a + run.load.okPerSecond, 0) / of(system).length, 1);
      const p = (system: System, key: "p50Ms" | "p99Ms") =>
        median(of(system).map((run) => run.load.latency[key]));
      const level = {
        concurrency,
        runs,
        turnpikePerSecond: mean("turnpike"),
        kservePerSecond: mean("kserve"),
        turnpikeP50Ms: p("turnpike", "p50Ms"),
        kserveP50Ms: p("kserve", "p50Ms"),
        turnpikeP99Ms: p("turnpike", "p99Ms"),
        kserveP99Ms: p("kserve", "p99Ms"),
      };
      levels.push({
        ...level,
        throughputRatio: round(level.turnpikePerSecond / Math.max(0.1, level.kservePerSecond), 2),
        p50DifferenceMs: round(level.turnpikeP50Ms - level.kserveP50Ms, 1),
      });
    }
    return {
      encoding,
      bodyBytes,
      answers,
      seconds: options.seconds,
      rounds: options.rounds,
      batch: options.batch,
      levels,
      ...(pinned ? { dedicated: pinned } : {}),
    };
  } finally {
    restorePins();
    unregister();
    await kserve?.stop(5000);
    await install.teardown(["ocr"]);
  }
}
