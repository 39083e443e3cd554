/**
 * The load generator: autocannon as its own process (autocannon-run.mjs), so it never shares an event loop (or a
 * core's time slice accounting) with the gateway it loads. Its JSON result is parsed into the few
 * figures the report uses. autocannon records latency in whole milliseconds.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "./env.js";
import { logDir } from "./processes.js";

export interface LoadOptions {
  url: string;
  /** A JSON value, or the body's own bytes (a Buffer is sent as it is). */
  body: unknown;
  /** Sent with every request; a content-type here replaces the default application/json. */
  headers: Record<string, string>;
  connections: number;
  durationSeconds: number;
  /** Fixed overall request rate (requests/s over all connections); unset: as fast as possible. */
  rate?: number;
  timeoutSeconds?: number;
  /** taskset cpu list for the load generator (dedicated-cores mode). */
  cpus?: string;
}

export interface LoadResult {
  /** Responses with HTTP 200 (a sync infer that finished) per second. */
  okPerSecond: number;
  ok: number;
  /** Every other answer (504 sync_timeout = not finished in time, 429, 503...) and socket errors/timeouts. */
  other: number;
  errors: number;
  statusCodes: Record<string, number>;
  durationSeconds: number;
  latency: { p50Ms: number; p90Ms: number; p99Ms: number; meanMs: number; maxMs: number };
  connections: number;
  rate?: number;
  /** CPU ms the generator itself spent per answer (the paced generator only). */
  generatorCpuMsPerRequest?: number;
  /** How many 100 ms windows (by due time) hold the slowest 1% of the answers (the paced generator only). */
  slowWindows?: { slow: number; windows: number };
  /**
   * The paced generator's own delays: its timer's lateness when it sent (p99, ms) and how many
   * requests found every connection busy (they wait, and the wait counts in their latency).
   */
  generatorDelays?: { lateP99Ms: number; waitedForConnection: number };
}

interface AutocannonJson {
  duration: number;
  errors: number;
  timeouts: number;
  statusCodeStats?: Record<string, { count: number }>;
  latency: { p50: number; p90: number; p99: number; average: number; max: number };
}

let loadRuns = 0;

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const run = `${process.pid}-${loadRuns++}`;
  const bodyPath = join(logDir, `body-${run}`);
  writeFileSync(bodyPath, Buffer.isBuffer(options.body) ? options.body : JSON.stringify(options.body));
  const optionsPath = join(logDir, `options-${run}.json`);
  writeFileSync(
    optionsPath,
    JSON.stringify({
      url: options.url,
      method: "POST",
      connections: options.connections,
      duration: options.durationSeconds,
      timeout: options.timeoutSeconds ?? 60,
      headers: { "content-type": "application/json", ...options.headers },
      ...(options.rate ? { overallRate: options.rate } : {}),
    }),
  );
  const args = [join(repoRoot, "bench/lib/autocannon-run.mjs"), optionsPath, bodyPath];
  const result = JSON.parse(await lastLineOfChild("autocannon", args, options.cpus)) as AutocannonJson;
  const statusCodes = Object.fromEntries(
    Object.entries(result.statusCodeStats ?? {}).map(([status, { count }]) => [status, count]),
  );
  const ok = statusCodes["200"] ?? 0;
  const answered = Object.values(statusCodes).reduce((a, b) => a + b, 0);
  return {
    okPerSecond: Math.round((ok / result.duration) * 10) / 10,
    ok,
    other: answered - ok + result.errors,
    errors: result.errors,
    statusCodes,
    durationSeconds: result.duration,
    latency: {
      p50Ms: result.latency.p50,
      p90Ms: result.latency.p90,
      p99Ms: result.latency.p99,
      meanMs: Math.round(result.latency.average * 100) / 100,
      maxMs: result.latency.max,
    },
    connections: options.connections,
    rate: options.rate,
  };
}

/**
 * Runs `node <args>` (pinned to `cpus` with taskset when given) as a load generator of its own, so it
 * never shares the bench's event loop, and returns the last line it printed (its JSON result).
 */
export async function lastLineOfChild(what: string, args: string[], cpus?: string): Promise<string> {
  const [command, argv] = cpus
    ? ["taskset", ["-c", cpus, process.execPath, ...args]]
    : [process.execPath, args];
  const { stdout, stderr, code } = await new Promise<{ stdout: string; stderr: string; code: number | null }>(
    (resolve, reject) => {
      const child = spawn(command, argv, { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
      child.stderr.on("data", (c: Buffer) => (err += c.toString("utf8")));
      child.on("error", reject);
      child.on("exit", (exitCode) => resolve({ stdout: out, stderr: err, code: exitCode }));
    },
  );
  const line = stdout.trim().split("\n").pop();
  if (code !== 0 || !line) throw new Error(`${what} failed (${code}): ${stderr.slice(-2000)}`);
  return line;
}
