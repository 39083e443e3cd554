/**
 * Section 6's Turnpike side at one connection, side by side: the OCR model end to end sent the
 * same OIP JSON tensor body (input `x`, FP32 [1,3,48,320]) against two or more checkouts of the
 * runtime, in alternating runs, so a change and what it replaced meet the same moment of a shared
 * machine. Reports latency and CPU ms per request of each process.
 *
 *   npx tsx bench/ocr-compare.ts --roots=/path/to/before,. [--seconds=8] [--rounds=3] [--connections=1] [--timeline=40] [--gateway-in=200] [--accept-in=200]
 *
 * --timeline=N sends N requests one at a time to each side first and splits each one's latency by
 * its record's timestamps (same host clock, 1 ms resolution; p50/p90/p99/max/mean): client send -> the gateway's
 * submittedAt (HTTP, body, parse, validation), -> the worker's run start (quota, publish, broker,
 * delivery, task decode), the worker's own time (decode, run, CTC), its finishedAt -> the client
 * has the answer (result publish, gateway, response).
 *
 * --gateway-in=N first sends N requests per side, alternating, that the gateway refuses (404, no
 * such model) once the body is read and parsed: the client-side time of everything before the
 * queue, at sub-millisecond resolution. --accept-in=N the same with requests it accepts
 * (`Prefer: respond-async`, 202 once the limits, the reservation and the durable publish are done).
 *
 * A root may carry environment for its roles after `?` (`--roots=.,.?TURNPIKE_COLLECTOR_FLUSH_MS=0`);
 * BENCH_NICE_<ROLE>=n there lowers that role's CPU priority (e.g. BENCH_NICE_COLLECTOR=10).
 *
 * BENCH_CPU_PROF=<dir> makes each role write a V8 CPU profile there when it exits;
 * BENCH_GATEWAY_NODE_ARGS (space-separated) go to each gateway's node, BENCH_WORKER_NODE_ARGS to
 * each worker's. Each root must be a checkout with node_modules. Measurements only; nothing asserts.
 */
import { loadavg, setPriority } from "node:os";
import { renderLinePng } from "../test/fixtures/text-line.js";
import { runLoad } from "./lib/autocannon.js";
import { BENCH_LINE, installInterruptHandler, onInterrupt, say, sleep } from "./lib/env.js";
import { cpuWindow, type ChildHandle, type CpuMeter } from "./lib/processes.js";
import { runtimeMeter } from "./lib/runtime-meter.js";
import { round } from "./lib/stats.js";
import { API_KEY, Installation, ocrModel } from "./sections/end-to-end.js";
import { tensorBody } from "./sections/kserve.js";
import { arg, parseRoot, startRoleOf } from "./lib/compare-sides.js";

interface Side {
  root: string;
  install: Installation;
  gateway: { handle: ChildHandle; url: string };
  meter: CpuMeter;
}

async function startSide(spec: string): Promise<Side> {
  const { root, env } = parseRoot(spec);
  const install = new Installation({ models: [ocrModel(4)], tenants: [{ name: "bench" }] });
  onInterrupt(() => install.teardown(["ocr"]));
  await install.seedTenant();
  const collector = await startRoleOf(install, root, "collector", { env });
  const worker = await startRoleOf(install, root, "worker", {
    env: { ...env, TURNPIKE_MODEL: "ocr", TURNPIKE_WORKER_ID: "bench-ocr" },
  });
  const gateway = await startRoleOf(install, root, "gateway", {
    env: { ...env, TURNPIKE_RATE_LIMIT_PER_IP: "1000000000", TURNPIKE_RATE_LIMIT_PER_TENANT: "1000000000" },
  });
  // BENCH_NICE_<ROLE>=n (in a root's `?` environment) lowers that role's CPU priority for the run.
  for (const [role, child] of Object.entries({ gateway, worker, collector })) {
    const nice = env[`BENCH_NICE_${role.toUpperCase()}`];
    if (nice) setPriority(child.handle.pid!, Number(nice));
  }
  return { root: spec, install, gateway, meter: runtimeMeter(() => ({ gateway, worker, collector })) };
}

/** Medians of each stage of `count` sequential requests, from the client's clock and the records. */
async function timeline(side: Side, body: unknown, headers: Record<string, string>, count: number) {
  const text = JSON.stringify(body);
  const samples: { id: string; sent: number; done: number }[] = [];
  for (let i = 0; i < count; i++) {
    const sent = Date.now();
    const response = await fetch(`${side.gateway.url}/v2/models/ocr/infer`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: text,
    });
    await response.arrayBuffer();
    samples.push({ id: response.headers.get("x-request-id") ?? "", sent, done: Date.now() });
  }
  await new Promise((r) => setTimeout(r, 1000));
  const { rows } = await side.install.pool.query(
    `SELECT id::text, extract(epoch FROM submitted_at) * 1000 AS submitted,
            extract(epoch FROM finished_at) * 1000 AS finished, queue_ms, infer_ms
       FROM "${side.install.schema}".requests WHERE id::text = ANY($1)`,
    [samples.map((s) => s.id)],
  );
  const byId = new Map(rows.map((r: Record<string, string>) => [r.id, r]));
  const stages: Record<string, number[]> = {
    total: [],
    gatewayIn: [],
    toWorker: [],
    queue: [],
    worker: [],
    back: [],
  };
  for (const s of samples) {
    const r = byId.get(s.id);
    if (!r) continue;
    const [submitted, finished, infer] = [Number(r.submitted), Number(r.finished), Number(r.infer_ms)];
    stages.total!.push(s.done - s.sent);
    stages.gatewayIn!.push(submitted - s.sent);
    stages.toWorker!.push(finished - infer - submitted);
    stages.queue!.push(Number(r.queue_ms));
    stages.worker!.push(infer);
    stages.back!.push(s.done - finished);
  }
  // p50 / p90 / p99 / max / mean: at one connection throughput is 1 / mean, so the tail counts.
  const spread = (v: number[]) => {
    const sorted = [...v].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? NaN;
    const mean = v.reduce((n, x) => n + x, 0) / Math.max(1, v.length);
    return [at(0.5), at(0.9), at(0.99), sorted.at(-1) ?? NaN, mean].map((x) => round(x, 1)).join("/");
  };
  say(
    `[${side.root}] timeline of ${stages.total!.length} sequential requests, p50/p90/p99/max/mean in ms: ` +
      Object.entries(stages)
        .map(([k, v]) => `${k} ${spread(v)}`)
        .join(" | ") +
      " (gatewayIn = send -> submittedAt, toWorker = submittedAt -> run start, queue = the record's queue_ms," +
      " worker = infer_ms, back = finishedAt -> answer at the client)",
  );
}

/**
 * The gateway's side alone: `count` requests with the same body sent one at a time to a model that
 * does not exist, alternating between sides, timed at the client with sub-millisecond resolution.
 * Each is refused with 404 once its body is in and parsed (HTTP, rate limit, key, body), so the
 * queues and the model are out of it.
 */
async function gatewayIn(
  sides: Side[],
  body: unknown,
  headers: Record<string, string>,
  count: number,
  accepted = false,
) {
  const text = JSON.stringify(body);
  const times = new Map<Side, number[]>(sides.map((s) => [s, []]));
  const [path, status, what] = accepted
    ? ["ocr", 202, "accepted (202, respond-async: limits, reservation, durable publish)"]
    : ["no-such-model", 404, "refused after the body (404)"];
  for (let i = 0; i < count; i++) {
    for (const side of i % 2 ? [...sides].reverse() : sides) {
      const start = performance.now();
      const response = await fetch(`${side.gateway.url}/v2/models/${path}/infer`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...headers,
          ...(accepted ? { prefer: "respond-async" } : {}),
        },
        body: text,
      });
      await response.arrayBuffer();
      if (response.status !== status)
        throw new Error(`expected ${status} from ${side.root}, got ${response.status}`);
      times.get(side)!.push(performance.now() - start);
      // An accepted request runs in the worker: let it finish before the next side's request.
      if (accepted) await sleep(40);
    }
  }
  for (const [side, values] of times) {
    const sorted = [...values].sort((a, b) => a - b);
    const at = (q: number) => round(sorted[Math.floor(sorted.length * q)]!, 2);
    const mean = round(values.reduce((a, b) => a + b, 0) / values.length, 2);
    say(
      `[${side.root}] gateway in, ${values.length} requests ${what}: p25 ${at(0.25)} p50 ${at(0.5)} p90 ${at(0.9)} mean ${mean} ms`,
    );
  }
}

async function main(): Promise<void> {
  installInterruptHandler();
  const roots = arg("roots", ".").split(",");
  const seconds = Number(arg("seconds", "8"));
  const rounds = Number(arg("rounds", "3"));
  const connections = Number(arg("connections", "1"));
  const body = tensorBody(renderLinePng(BENCH_LINE));
  const headers = { authorization: `Bearer ${API_KEY}` };
  const url = (side: Side) => `${side.gateway.url}/v2/models/ocr/infer`;
  const sides: Side[] = [];
  const p50s = new Map<string, number[]>();
  try {
    for (const root of roots) sides.push(await startSide(root));
    for (const side of sides) {
      await runLoad({ url: url(side), body, headers, connections: 4, durationSeconds: 3 });
    }
    const refused = Number(arg("gateway-in", "0"));
    if (refused > 0) await gatewayIn(sides, body, headers, refused);
    const accepted = Number(arg("accept-in", "0"));
    if (accepted > 0) await gatewayIn(sides, body, headers, accepted, true);
    const sequential = Number(arg("timeline", "0"));
    for (const side of sequential > 0 ? sides : []) await timeline(side, body, headers, sequential);
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 ? [...sides].reverse() : sides;
      for (const side of order) {
        const load1 = loadavg()[0]!.toFixed(2);
        const window = cpuWindow(side.meter);
        const result = await runLoad({
          url: url(side),
          body,
          headers,
          connections,
          durationSeconds: seconds,
        });
        const cpu = window.end();
        const per = (k: string) => round((cpu.cpuMs[k] ?? 0) / Math.max(1, result.ok), 2);
        const keys = ["gateway", "worker", "collector", "rabbitmq", "redis", "postgres"];
        const total = round(
          keys.reduce((n, k) => n + per(k), 0),
          2,
        );
        p50s.set(side.root, [...(p50s.get(side.root) ?? []), result.latency.p50Ms]);
        say(
          `[${side.root}] c=${connections} round ${r + 1}: ${result.okPerSecond} ok/s p50 ${result.latency.p50Ms} ` +
            `p99 ${result.latency.p99Ms} ms other ${result.other} | CPU ms/req ` +
            `${keys.map((k) => `${k} ${per(k)}`).join(" ")} total ${total} | load ${load1} foreign ${cpu.foreignPercent}%`,
        );
      }
    }
    for (const [root, values] of p50s) {
      const sorted = [...values].sort((a, b) => a - b);
      say(`[${root}] median p50 ${sorted[Math.floor(sorted.length / 2)]} ms over ${values.length} runs`);
    }
  } finally {
    for (const side of sides) await side.install.teardown(["ocr"]).catch(() => undefined);
  }
}

await main();
