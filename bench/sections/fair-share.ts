/**
 * Section 8, fair sharing of one model (runtime/worker/fair-scheduler.ts): the real gateway,
 * worker and collector as processes, a model whose batches take tens of ms (test/fixtures/
 * slow-model.ts), tenants submitting asynchronously from this process.
 * 1. Two normal tenants keep the model backlogged, b offering 0.75 of the model's capacity (measured
 *    first) and a ten times as much, each bounded by its own maxQueuedPerModel (429 above it): each
 *    one's share of the completions in a window.
 * 2. A low tenant floods (twice the capacity) while a high tenant sends 4 requests/s: the high
 *    requests' queue wait (enqueue to the model's start, from the records) against the model's
 *    batch time, and their time from enqueue to finish.
 * CPU per completed request by process is measured in both phases; the scheduler's own cost per
 * request is measured in-process.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import { tenantKeys } from "../../runtime/shared/contracts/index.js";
import { QuotaStore, hashApiKey } from "../../runtime/shared/quota/index.js";
import { FairScheduler } from "../../runtime/worker/fair-scheduler.js";
import { slowBody, SLOW_WIDTH, writeSlowModel } from "../../test/fixtures/slow-model.js";
import { onInterrupt, say, sleep } from "../lib/env.js";
import { cpuWindow } from "../lib/processes.js";
import { runtimeMeter } from "../lib/runtime-meter.js";
import { percentile, round } from "../lib/stats.js";
import { Installation } from "./end-to-end.js";

const MODEL = "slow";
const BATCH = 4;
/**
 * About 100 ms per batch of 4 here (2,000 layers gave 9.3 ms): the model, not the gateway, must be
 * what keeps the tenants waiting, so that a 10x submitter's HTTP load stays small.
 */
const LAYERS = 20000;
/** Offered by a alone to measure the capacity: far above it, so the model stays backlogged. */
const CALIBRATION_RATE = 200;
const BACKLOG = 64;
const TENANTS = ["a", "b", "hi", "lo"] as const;
type Tenant = (typeof TENANTS)[number];
const keyOf = (tenant: string) => `fair-${tenant}-key-0123456789abcdef`;

/** CPU of one phase, as a row of the CPU table. */
export interface FairCpuRow {
  label: string;
  cpuMsPerRequest: Record<string, number>;
}

export interface FairShareResult {
  seconds: number;
  share: {
    /** The model's completions per second with one tenant backlogged (b offers 0.75 of it, a 7.5). */
    capacityPerSecond: number;
    /** Submission attempts per second by tenant (a ten times b's rate). */
    attemptsPerSecond: Record<string, number>;
    completions: Record<string, number>;
    /** b's share of the completions in the window; fair is 0.5. */
    shareB: number;
    /** |share - fair| / fair, in percent. */
    deviationPercent: number;
  };
  priority: {
    highRequests: number;
    /** Enqueue to the model's start (records' queue_ms; before commit 6cc0e9a it ended at the worker's acceptance). */
    highQueueWaitMs: { p50: number; p99: number; max: number };
    /** Enqueue to finish (the records' finished_at - submitted_at): comparable across versions. */
    highLatencyMs?: { p50: number; p99: number; max: number };
    batchMs: number;
    lowCompletions: number;
  };
  /** FairScheduler push + next per request, in-process (µs), with 2 and with 100 tenants waiting. */
  schedulerMicros: { tenants2: number; tenants100: number };
  cpu: FairCpuRow[];
}

/**
 * Submits asynchronously at `rate` requests/s until `until` (open loop: it does not wait for
 * answers, at most 64 in flight); answers other than 202 (429 when the tenant's own backlog is full)
 * are counted and dropped, as a client that retries later would.
 */
async function submitter(
  url: string,
  tenant: string,
  rate: number,
  until: number,
  counts: Map<string, number>,
) {
  const body = JSON.stringify(slowBody());
  const headers = {
    authorization: `Bearer ${keyOf(tenant)}`,
    "content-type": "application/json",
    prefer: "respond-async",
  };
  const pending = new Set<Promise<void>>();
  const started = Date.now();
  for (let sent = 0; Date.now() < until; sent++) {
    const due = started + (sent * 1000) / rate;
    if (due > Date.now()) await sleep(due - Date.now());
    if (pending.size >= 64) await Promise.race(pending);
    const one: Promise<void> = fetch(`${url}/v2/models/${MODEL}/infer`, { method: "POST", headers, body })
      .then((res) => res.arrayBuffer())
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => pending.delete(one));
    pending.add(one);
    counts.set(tenant, (counts.get(tenant) ?? 0) + 1);
  }
  await Promise.all(pending);
}

function schedulerMicros(tenants: number): number {
  const s = new FairScheduler<number>();
  const n = 200_000;
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    s.push({ tenant: `t${i % tenants}`, priority: 5, weight: 1 + (i % 3) }, i);
    if (s.size > tenants * 4) s.next();
  }
  while (s.size > 0) s.next();
  return round(((performance.now() - started) * 1000) / n, 3);
}

export async function fairShare(seconds: number): Promise<FairShareResult> {
  const uri = writeSlowModel(mkdtempSync(join(tmpdir(), "turnpike-bench-slow-")), LAYERS);
  const tensor = { name: "x", datatype: "FP32" as const, shape: [-1, SLOW_WIDTH] };
  const install = new Installation({
    models: [
      {
        name: MODEL,
        uri,
        inputs: [tensor],
        outputs: [{ ...tensor, name: "y" }],
        tokens: { mode: "fixed", maxOutputTokens: 1, unitsPerRequest: 1 },
        batching: { maxBatchSize: BATCH, maxDelayMs: 0 },
        threads: 1,
      },
    ],
    tenants: [
      { name: "a", maxQueuedPerModel: BACKLOG },
      { name: "b", maxQueuedPerModel: BACKLOG },
      { name: "hi", priority: 9 },
      { name: "lo", priority: 1, maxQueuedPerModel: BACKLOG },
    ],
  });
  const unregister = onInterrupt(() => install.teardown([MODEL]));
  try {
    const redis = new Redis(install.urls.redisUrl);
    const quota = new QuotaStore(redis, install.prefix);
    for (const tenant of TENANTS) await quota.writeTenant(tenant, {}, [hashApiKey(keyOf(tenant))]);
    redis.disconnect();
    say(`fair share: prefix ${install.prefix}; starting collector, worker (${LAYERS} layers) and gateway`);
    const collector = await install.start("collector");
    const worker = await install.start("worker", { TURNPIKE_MODEL: MODEL, TURNPIKE_WORKER_ID: "bench-fair" });
    const gateway = await install.start("gateway", {
      TURNPIKE_RATE_LIMIT_PER_IP: "1000000000",
      TURNPIKE_RATE_LIMIT_PER_TENANT: "1000000000",
    });
    const meter = runtimeMeter(() => ({ gateway, worker, collector }));
    const completed = async (from: number, to: number) => {
      const { rows } = await install.pool.query<{ tenant: string; n: number }>(
        `SELECT tenant, count(*)::int AS n FROM "${install.schema}".requests
          WHERE status = 'succeeded' AND finished_at BETWEEN to_timestamp($1 / 1000.0) AND to_timestamp($2 / 1000.0)
          GROUP BY tenant`,
        [from, to],
      );
      return Object.fromEntries(rows.map((r) => [r.tenant, r.n])) as Record<string, number>;
    };
    /** Runs submitters at the given rates; measures completions and CPU after 2 s of warm-up. */
    const phase = async (label: string, rates: Partial<Record<Tenant, number>>) => {
      const counts = new Map<string, number>();
      const warm = Date.now() + 2_000;
      const until = warm + seconds * 1000;
      const loops = Object.entries(rates).map(([tenant, rate]) =>
        submitter(gateway.url, tenant, rate, until, counts),
      );
      await sleep(warm - Date.now());
      const window = cpuWindow(meter);
      const from = Date.now();
      await sleep(until - Date.now());
      const to = Date.now();
      const cpu = window.end();
      await Promise.all(loops);
      const done = await completed(from, to);
      const total = Object.values(done).reduce((a, b) => a + b, 0);
      const perRequest = Object.fromEntries(
        Object.entries(cpu.cpuMs).map(([k, v]) => [k, round(v / Math.max(1, total), 3)]),
      );
      const attempts = Object.fromEntries(
        [...counts].map(([t, n]) => [t, round(n / ((until - warm + 2000) / 1000), 1)]),
      );
      say(
        `${label}: completions ${JSON.stringify(done)}, attempts/s ${JSON.stringify(attempts)}, ` +
          `busy ${cpu.busyPercent}%`,
      );
      return { from, to, done, attempts, row: { label, cpuMsPerRequest: perRequest } };
    };

    // The model's capacity here and now (the machine is shared): b must offer more than half of it
    // to stay backlogged, and a ten times as much.
    const calibration = await phase("fair share: capacity (a alone)", { a: CALIBRATION_RATE });
    const capacity = Math.max(1, (calibration.done.a ?? 0) / seconds);
    await drain(install, ["a"], 60_000);
    const rateB = round(0.75 * capacity, 1);
    const p1 = await phase(`fair share: a at ${round(10 * rateB, 1)}/s vs b at ${rateB}/s`, {
      a: 10 * rateB,
      b: rateB,
    });
    const a = p1.done.a ?? 0;
    const b = p1.done.b ?? 0;
    const shareB = a + b > 0 ? b / (a + b) : 0;
    await drain(install, ["a", "b"], 60_000);

    const p2 = await phase(`priority: lo at ${round(2 * capacity, 1)}/s vs hi at 4/s`, {
      lo: 2 * capacity,
      hi: 4,
    });
    const { rows } = await install.pool.query<{
      tenant: string;
      queue_ms: number;
      infer_ms: number;
      total_ms: number;
    }>(
      `SELECT tenant, queue_ms, infer_ms,
              extract(epoch FROM finished_at - submitted_at) * 1000 AS total_ms
         FROM "${install.schema}".requests
        WHERE status = 'succeeded' AND submitted_at BETWEEN to_timestamp($1 / 1000.0) AND to_timestamp($2 / 1000.0)`,
      [p2.from, p2.to],
    );
    const highs = rows.filter((r) => r.tenant === "hi");
    const highWaits = highs.map((r) => Number(r.queue_ms)).sort((x, y) => x - y);
    const highTotals = highs.map((r) => Number(r.total_ms)).sort((x, y) => x - y);
    const spread = (sorted: number[]) => ({
      p50: round(percentile(sorted, 50), 1),
      p99: round(percentile(sorted, 99), 1),
      max: round(sorted.at(-1) ?? 0, 1),
    });
    const batches = rows
      .filter((r) => r.tenant === "lo")
      .map((r) => Number(r.infer_ms))
      .sort((x, y) => x - y);
    return {
      seconds,
      share: {
        capacityPerSecond: round(capacity, 1),
        attemptsPerSecond: p1.attempts,
        completions: p1.done,
        shareB: round(shareB, 3),
        deviationPercent: round((Math.abs(shareB - 0.5) / 0.5) * 100, 1),
      },
      priority: {
        highRequests: highWaits.length,
        highQueueWaitMs: spread(highWaits),
        highLatencyMs: spread(highTotals),
        batchMs: round(percentile(batches, 50), 1),
        lowCompletions: p2.done.lo ?? 0,
      },
      schedulerMicros: { tenants2: schedulerMicros(2), tenants100: schedulerMicros(100) },
      cpu: [p1.row, p2.row],
    };
  } finally {
    unregister();
    await install.teardown([MODEL]);
  }
}

/** Waits until the bounded tenants' backlogs (waiting or running) are empty, at most `timeoutMs`. */
async function drain(install: Installation, tenants: string[], timeoutMs: number): Promise<void> {
  const redis = new Redis(install.urls.redisUrl);
  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      let left = 0;
      for (const t of tenants) left += await redis.zcard(tenantKeys(install.prefix, t).backlog(MODEL));
      if (left === 0) return;
      await sleep(200);
    }
  } finally {
    redis.disconnect();
  }
}
