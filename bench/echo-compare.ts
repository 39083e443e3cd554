/**
 * The echo part of the end-to-end section, side by side: the same runs (one request at a time, the
 * ceiling at 64 connections, half of the ceiling) against two or more checkouts of the runtime,
 * alternating, so a change and what it replaced meet the same moment of a shared machine. Reports
 * latency and CPU ms per request of each process, with the load average before every run.
 *
 *   npx tsx bench/echo-compare.ts --roots=/path/to/before,. [--seconds=8] [--rounds=2] [--only=ceiling] [--rate=100]
 *
 * A root may carry environment for its roles after `?`, so one checkout can be compared with
 * itself under another setting: `--roots=.,.?TURNPIKE_COLLECTOR_FLUSH_MS=50&TURNPIKE_X=1`.
 * `BENCH_ECHO_MAX_DELAY_MS=N` there sets that side's echo model batching window (default 0).
 *
 * --only picks from idle (CPU ms per second of each role with no load), c1, ceiling, half (autocannon's --overallRate: per-second bursts) and paced
 * (the same rate evenly spaced, bench/lib/paced-load.ts); with --rate, paced or fixed-paced also
 * runs that rate evenly spaced.
 *
 * --tails adds a line per run: where its slow requests spent their time (bench/lib/echo-tails.ts).
 *
 * Each root must be a checkout with node_modules. Measurements only; nothing asserts.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { writeTinyModels } from "../test/fixtures/tiny-models.js";
import { runLoad, type LoadResult } from "./lib/autocannon.js";
import { runPacedLoad } from "./lib/paced-load.js";
import { recordTails, samplePauses, tailsLine } from "./lib/echo-tails.js";
import { installInterruptHandler, onInterrupt, say, sleep } from "./lib/env.js";
import { cpuWindow, type ChildHandle, type CpuMeter } from "./lib/processes.js";
import { runtimeMeter } from "./lib/runtime-meter.js";
import { round } from "./lib/stats.js";
import { API_KEY, Installation } from "./sections/end-to-end.js";
import { arg, startRoleOf } from "./lib/compare-sides.js";

interface Side {
  /** The root as given (with its environment, if any): the label of its lines. */
  root: string;
  install: Installation;
  gateway: { handle: ChildHandle; url: string };
  worker: ChildHandle;
  collector: ChildHandle;
  meter: CpuMeter;
}

/** `root?KEY=VALUE&KEY=VALUE` -> the checkout's path and the environment of its roles. */
function parseRoot(spec: string): { root: string; env: Record<string, string> } {
  const [path = ".", query = ""] = spec.split("?", 2);
  return { root: resolve(path), env: Object.fromEntries(new URLSearchParams(query)) };
}

async function startSide(spec: string, echoUri: string): Promise<Side> {
  const { root, env } = parseRoot(spec);
  const install = new Installation({
    models: [
      {
        name: "echo",
        uri: echoUri,
        inputs: [{ name: "x", datatype: "FP32", shape: [-1, 4] }],
        outputs: [{ name: "y", datatype: "FP32", shape: [-1, 4] }],
        tokens: { mode: "fixed", maxOutputTokens: 1, unitsPerRequest: 1 },
        // BENCH_ECHO_MAX_DELAY_MS in a root's environment: the model's batching window on that side.
        batching: { maxBatchSize: 32, maxDelayMs: Number(env.BENCH_ECHO_MAX_DELAY_MS ?? 0) },
      },
    ],
    tenants: [{ name: "bench" }],
  });
  onInterrupt(() => install.teardown(["echo"]));
  await install.seedTenant();
  const collector = await startRoleOf(install, root, "collector", { env });
  const worker = await startRoleOf(install, root, "worker", {
    env: { ...env, TURNPIKE_MODEL: "echo", TURNPIKE_WORKER_ID: "bench-echo" },
  });
  const gateway = await startRoleOf(install, root, "gateway", {
    env: { ...env, TURNPIKE_RATE_LIMIT_PER_IP: "1000000000", TURNPIKE_RATE_LIMIT_PER_TENANT: "1000000000" },
  });
  const meter = runtimeMeter(() => ({ gateway, worker, collector }));
  return { root: spec, install, gateway, worker: worker.handle, collector: collector.handle, meter };
}

const body = { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] };
const headers = { authorization: `Bearer ${API_KEY}` };

/** Read and write system calls a process made so far (/proc/<pid>/io; all its threads). */
function syscalls(pid: number): { r: number; w: number } {
  try {
    const io = readFileSync(`/proc/${pid}/io`, "utf8");
    const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, "m").exec(io)?.[1] ?? 0);
    return { r: field("syscr"), w: field("syscw") };
  } catch {
    return { r: 0, w: 0 };
  }
}

/** Syscalls per role, sampled: unlike CPU time, their count does not grow with others' load. */
function syscallWindow(side: Side) {
  const roles = { gateway: side.gateway.handle.pid, worker: side.worker.pid, collector: side.collector.pid };
  const before = Object.entries(roles).map(([role, pid]) => [role, pid, syscalls(pid)] as const);
  return (ok: number) =>
    before
      .map(([role, pid, was]) => {
        const now = syscalls(pid);
        const per = (n: number) => round(n / Math.max(1, ok), 2);
        return `${role} ${per(now.r - was.r)}/${per(now.w - was.w)}`;
      })
      .join(" ");
}

async function measure(side: Side, label: string, load: (url: string) => Promise<LoadResult>) {
  const load1 = loadavg()[0]!.toFixed(2);
  const sys = syscallWindow(side);
  const tails = process.argv.includes("--tails");
  const pausesBefore = tails ? await samplePauses(side.gateway.url) : undefined;
  const window = cpuWindow(side.meter);
  const from = Date.now();
  const result = await load(`${side.gateway.url}/v2/models/echo/infer`);
  const to = Date.now();
  const cpu = window.end();
  const syscallsPer = sys(result.ok);
  const pausesAfter = tails ? await samplePauses(side.gateway.url) : undefined;
  await sleep(500);
  const stages = await side.install.stages("echo", from, to);
  const per = (k: string) => round((cpu.cpuMs[k] ?? 0) / Math.max(1, result.ok), 3);
  const own = per("gateway") + per("worker") + per("collector");
  const services = per("rabbitmq") + per("redis") + per("postgres");
  say(
    `[${side.root}] ${label}: ${result.okPerSecond} ok/s p50 ${result.latency.p50Ms} p99 ${result.latency.p99Ms} ms ` +
      `other ${result.other} | CPU ms/req gateway ${per("gateway")} worker ${per("worker")} ` +
      `collector ${per("collector")} (roles ${round(own, 3)}) rabbitmq ${per("rabbitmq")} redis ${per("redis")} ` +
      `postgres ${per("postgres")} (services ${round(services, 3)})` +
      (result.generatorCpuMsPerRequest === undefined ? "" : ` generator ${result.generatorCpuMsPerRequest}`) +
      ` | syscalls/req read/write ${syscallsPer} ` +
      `context switches/req ${round(cpu.contextSwitches / Math.max(1, result.ok), 1)} ` +
      `| records ${stages.records} (medians: queue ${stages.queueMs} ms, result->commit ${stages.resultToCommitMs} ms, batch ${stages.meanBatchSize}) ` +
      `| load ${load1} foreign ${cpu.foreignPercent}%`,
  );
  if (tails) {
    const records = await recordTails(side.install.pool, side.install.schema, "echo", from, to);
    say(
      `[${side.root}] ${label}: ${tailsLine(records, pausesBefore, pausesAfter, result.slowWindows, result.generatorDelays)}`,
    );
  }
  return result;
}

async function main(): Promise<void> {
  installInterruptHandler();
  const roots = arg("roots", ".").split(",");
  const seconds = Number(arg("seconds", "8"));
  const rounds = Number(arg("rounds", "1"));
  const only = arg("only", "c1,ceiling,half,paced").split(",");
  const tiny = writeTinyModels(mkdtempSync(join(tmpdir(), "turnpike-bench-tiny-")));
  const sides: Side[] = [];
  try {
    for (const root of roots) sides.push(await startSide(root, `file://${tiny.echo}`));
    for (const side of sides) {
      await runLoad({
        url: `${side.gateway.url}/v2/models/echo/infer`,
        body,
        headers,
        connections: 16,
        durationSeconds: 2,
      });
    }
    for (let r = 0; r < rounds; r++) {
      // What each role costs with no request at all (timers, pollers), in CPU ms per second: at a
      // low rate it is spread over few requests and dominates their CPU per request.
      for (const side of only.includes("idle") ? sides : []) {
        const window = cpuWindow(side.meter);
        await sleep(seconds * 1000);
        const cpu = window.end();
        const perSecond = (k: string) => round(((cpu.cpuMs[k] ?? 0) * 1000) / cpu.elapsedMs, 2);
        say(
          `[${side.root}] idle: CPU ms/s gateway ${perSecond("gateway")} worker ${perSecond("worker")} ` +
            `collector ${perSecond("collector")} | foreign ${cpu.foreignPercent}%`,
        );
      }
      const ceilings = new Map<Side, number>();
      for (const side of only.includes("c1") ? sides : []) {
        await measure(side, "c=1", (url) =>
          runLoad({ url, body, headers, connections: 1, durationSeconds: Math.min(5, seconds) }),
        );
      }
      const needCeiling = ["ceiling", "half", "paced"].some((o) => only.includes(o));
      for (const side of needCeiling ? sides : []) {
        const c = await measure(side, "ceiling c=64", (url) =>
          runLoad({ url, body, headers, connections: 64, durationSeconds: seconds }),
        );
        ceilings.set(side, c.okPerSecond);
      }
      for (const side of only.includes("half") ? sides : []) {
        const rate = Math.max(1, Math.floor(ceilings.get(side)! / 2));
        await measure(side, `half ${rate} req/s`, (url) =>
          runLoad({ url, body, headers, connections: 64, rate, durationSeconds: seconds }),
        );
      }
      // The same rate, evenly spaced (autocannon's rate sends each second's share in one burst).
      for (const side of only.includes("paced") ? sides : []) {
        const rate = Math.max(1, Math.floor(ceilings.get(side)! / 2));
        await measure(side, `half ${rate} req/s paced`, (url) =>
          runPacedLoad({ url, body, headers, connections: 64, rate, durationSeconds: seconds }),
        );
      }
      // The same fixed rate for every side: CPU per request at equal load, the fairest comparison
      // on a busy machine (idle costs such as timers weigh the same on each side).
      const fixed = Number(arg("rate", "0"));
      for (const side of fixed > 0 ? sides : []) {
        await measure(side, `fixed ${fixed} req/s`, (url) =>
          runLoad({ url, body, headers, connections: 32, rate: fixed, durationSeconds: seconds }),
        );
        if (only.includes("paced") || only.includes("fixed-paced")) {
          await measure(side, `fixed ${fixed} req/s paced`, (url) =>
            runPacedLoad({ url, body, headers, connections: 32, rate: fixed, durationSeconds: seconds }),
          );
        }
      }
    }
  } finally {
    for (const side of sides) await side.install.teardown(["echo"]).catch(() => undefined);
  }
}

await main();
