/**
 * An open-loop load generator with evenly spaced requests: request i is due at start + i / rate,
 * and its latency counts from that due time (a request that waits for a free connection is charged
 * the wait, so a stall is not hidden). autocannon's --overallRate is not this: each connection
 * sends its whole per-second share back to back when its one-second timer fires, so "half of the
 * ceiling" is the ceiling's 64-deep burst for half of every second, and its latency is the
 * ceiling's. Runs as its own process (like autocannon) so it never shares the gateway's event loop.
 *
 *   runPacedLoad(options) -> LoadResult (same shape as runLoad's)
 */
import { Agent, request } from "node:http";
import { fileURLToPath } from "node:url";
import { RawHttpClient } from "./raw-http-client.js";
import { lastLineOfChild, type LoadOptions, type LoadResult } from "./autocannon.js";

const CHILD_FLAG = "--paced-load-child";

/** Runs the load in a child process and returns what it measured. */
export async function runPacedLoad(options: LoadOptions & { rate: number }): Promise<LoadResult> {
  const self = fileURLToPath(import.meta.url);
  const argv = ["--import", "tsx", self, CHILD_FLAG, JSON.stringify(options)];
  return JSON.parse(await lastLineOfChild("paced load", argv, options.cpus)) as LoadResult;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const at = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return Math.round(sorted[Math.max(0, at)]! * 10) / 10;
}

/** How many 100 ms windows (by due time) the slowest 1% of the answers fall in. */
function windowsOfSlowest(latencies: number[], dues: number[]): { slow: number; windows: number } {
  const slow = Math.max(1, Math.floor(latencies.length / 100));
  const order = latencies.map((_, i) => i).sort((a, b) => latencies[b]! - latencies[a]!);
  const windows = new Set(order.slice(0, slow).map((i) => Math.floor(dues[i]! / 100)));
  return { slow: Math.min(slow, latencies.length), windows: windows.size };
}

async function child(options: LoadOptions & { rate: number }): Promise<void> {
  const url = new URL(options.url);
  const payload = Buffer.from(JSON.stringify(options.body));
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections });
  const headers = {
    "content-type": "application/json",
    "content-length": payload.length,
    ...options.headers,
  };
  const latencies: number[] = [];
  /** Due time (ms from the start) of each answer in `latencies`, in the same order. */
  const dues: number[] = [];
  const statusCodes: Record<string, number> = {};
  let errors = 0;
  let inFlight = 0;
  const interval = 1000 / options.rate;
  const start = performance.now();
  const end = start + options.durationSeconds * 1000;
  let next = start;
  let finished: () => void = () => undefined;
  const drained = new Promise<void>((resolve) => (finished = resolve));
  let scheduling = true;

  const timeoutMs = (options.timeoutSeconds ?? 60) * 1000;
  // BENCH_PACED_CLIENT=node: Node's http.request, as before the raw client (to compare their cost).
  const raw =
    process.env.BENCH_PACED_CLIENT === "node" ? undefined : new RawHttpClient({ ...options, timeoutMs });
  const cpuBefore = process.cpuUsage();
  const lateness: number[] = [];
  let waitedForConnection = 0;
  const fire = (due: number) => {
    lateness.push(performance.now() - due);
    if (inFlight >= options.connections) waitedForConnection++;
    inFlight++;
    const done = (status?: number) => {
      if (status === undefined) errors++;
      else {
        statusCodes[status] = (statusCodes[status] ?? 0) + 1;
        if (status === 200) {
          latencies.push(performance.now() - due);
          dues.push(due - start);
        }
      }
      if (--inFlight === 0 && !scheduling) finished();
    };
    if (raw) return raw.send(done);
    const req = request(
      { host: url.hostname, port: url.port, path: url.pathname, method: "POST", agent, headers },
      (res) => {
        res.on("data", () => undefined);
        res.on("end", () => done(res.statusCode));
        res.on("error", () => done());
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy());
    req.on("error", () => done());
    req.end(payload);
  };

  // Fire every request that is due, then sleep about a millisecond; a late timer sends the
  // overdue ones at once and their latency includes the lateness.
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (next <= now && next < end) {
        fire(next);
        next += interval;
      }
      if (next >= end) return resolve();
      setTimeout(tick, Math.max(0, Math.min(1, next - performance.now())));
    };
    tick();
  });
  scheduling = false;
  if (inFlight > 0) await drained;
  const seconds = (performance.now() - start) / 1000;
  agent.destroy();
  raw?.close();
  const cpu = process.cpuUsage(cpuBefore);
  const slowWindows = windowsOfSlowest(latencies, dues);
  latencies.sort((a, b) => a - b);
  const ok = statusCodes["200"] ?? 0;
  const answered = Object.values(statusCodes).reduce((a, b) => a + b, 0);
  const result: LoadResult = {
    okPerSecond: Math.round((ok / options.durationSeconds) * 10) / 10,
    ok,
    other: answered - ok + errors,
    errors,
    statusCodes,
    durationSeconds: Math.round(seconds * 10) / 10,
    latency: {
      p50Ms: percentile(latencies, 50),
      p90Ms: percentile(latencies, 90),
      p99Ms: percentile(latencies, 99),
      meanMs: Math.round((latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length)) * 100) / 100,
      maxMs: percentile(latencies, 100),
    },
    connections: options.connections,
    rate: options.rate,
    generatorCpuMsPerRequest:
      Math.round(((cpu.user + cpu.system) / 1000 / Math.max(1, answered)) * 1000) / 1000,
    slowWindows,
    generatorDelays: {
      lateP99Ms: percentile(
        lateness.sort((a, b) => a - b),
        99,
      ),
      waitedForConnection,
    },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (process.argv[2] === CHILD_FLAG)
  await child(JSON.parse(process.argv[3]!) as LoadOptions & { rate: number });
