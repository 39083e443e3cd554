/**
 * Where a traced run's requests spent their time, stage by stage: joins the files the roles wrote
 * with TURNPIKE_STAGE_TRACE=<prefix> (runtime/shared/stage-trace.ts) by request id and prints the
 * percentiles of each step of a synchronous request (echo or OCR), for all requests and for the slowest 1%.
 *
 *   npx tsx bench/echo-compare.ts --roots='.?TURNPIKE_STAGE_TRACE=/tmp/st/run' --only=fixed-paced --rate=900
 *   npx tsx bench/ocr-compare.ts --roots='.?TURNPIKE_STAGE_TRACE=/tmp/st/run' --rounds=1   (one connection)
 *   npx tsx bench/stage-report.ts --prefix=/tmp/st/run [--from=<epoch ms>] [--to=<epoch ms>]
 *
 * The steps (g. = gateway, w. = worker):
 *   arrived->handler   HTTP read, routing, auth, body parse (fastify's start to the handler)
 *   handler->submit    validation, token estimate, waiters registered
 *   submit->redis      the Redis round trip (rate limits, reservation)
 *   redis->delivered   the task's publish, the quorum queue's commit, delivery to the worker
 *   redis->confirmed   the same publish's confirm back at the gateway
 *   delivered->accepted  the worker's fair scheduler
 *   accepted->batched  the cancellation check (a Redis round trip unless the worker was idle)
 *   batched->run       the batcher's wait
 *   run->publish       the model
 *   publish->result    the result's publish and its delivery on the gateway's queue
 *   result->send       the gateway's wake-up of the waiting handler
 *   send->done         the answer's serialisation and write
 * Measurements only; nothing asserts.
 */
import { readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { arg } from "./lib/compare-sides.js";

type Marks = Record<string, number>;

const STEPS: [string, string][] = [
  ["g.arrived", "g.handler"],
  ["g.handler", "g.submit"],
  ["g.submit", "g.redis"],
  ["g.redis", "w.delivered"],
  ["g.redis", "g.confirmed"],
  ["w.delivered", "w.accepted"],
  ["w.accepted", "w.batched"],
  ["w.batched", "w.run"],
  ["w.run", "w.publish"],
  ["w.publish", "g.result"],
  ["g.result", "g.send"],
  ["g.send", "g.done"],
  ["g.arrived", "g.done"],
];

function load(prefix: string): Map<string, Marks> {
  const dir = dirname(prefix);
  const stem = basename(prefix);
  const joined = new Map<string, Marks>();
  for (const file of readdirSync(dir).filter((f) => f.startsWith(`${stem}.`) && f.endsWith(".json"))) {
    const marks = JSON.parse(readFileSync(join(dir, file), "utf8")) as Record<string, Marks>;
    for (const [id, stages] of Object.entries(marks)) joined.set(id, { ...joined.get(id), ...stages });
  }
  return joined;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

function table(requests: Marks[], label: string): void {
  console.log(`${label}: ${requests.length} requests; ms p50 / p90 / p99 / mean`);
  for (const [from, to] of STEPS) {
    const d = requests
      .filter((m) => m[from] !== undefined && m[to] !== undefined)
      .map((m) => m[to]! - m[from]!)
      .sort((a, b) => a - b);
    if (d.length === 0) continue;
    const mean = d.reduce((s, x) => s + x, 0) / d.length;
    const f = (x: number) => x.toFixed(2).padStart(7);
    console.log(
      `  ${`${from}->${to}`.padEnd(26)} ${f(percentile(d, 0.5))} ${f(percentile(d, 0.9))} ${f(percentile(d, 0.99))} ${f(mean)}  (${d.length})`,
    );
  }
}

const prefix = arg("prefix", "");
if (!prefix) throw new Error("--prefix=<the TURNPIKE_STAGE_TRACE prefix> is required");
const from = Number(arg("from", "0"));
const to = Number(arg("to", String(Number.MAX_SAFE_INTEGER)));
/**
 * The collector's quota settles of a flush run in Redis as one burst (c.settle -> c.settled): does a
 * step that overlapped one take longer than one that did not? Asked of the gateway's Redis round
 * trip and of the model's run (at one connection, work beside a run slows the run).
 */
function overlapWithSettles(run: Marks[], slow: Marks[]): void {
  const bursts = new Map<number, number>();
  for (const m of all) {
    const start = m["c.settle"];
    const end = m["c.settled"];
    if (start !== undefined && end !== undefined) bursts.set(start, Math.max(bursts.get(start) ?? 0, end));
  }
  const spans = [...bursts.entries()];
  const parts = [
    `collector settle bursts: ${spans.length}, mean ${(spans.reduce((t, [s, e]) => t + e - s, 0) / Math.max(1, spans.length)).toFixed(2)} ms`,
  ];
  for (const [label, from, to] of [
    ["Redis step", "g.submit", "g.redis"],
    ["model step", "w.run", "w.publish"],
  ] as const) {
    const timed = (m: Marks) => m[from] !== undefined && m[to] !== undefined;
    const overlaps = (m: Marks) => timed(m) && spans.some(([s, e]) => s < m[to]! && e > m[from]!);
    const summary = (ms: Marks[]) => {
      const d = ms.map((m) => m[to]! - m[from]!).sort((a, b) => a - b);
      if (d.length === 0) return "-";
      return `${percentile(d, 0.5).toFixed(2)} / ${(d.reduce((t, x) => t + x, 0) / d.length).toFixed(2)}`;
    };
    const steps = run.filter(timed);
    const withBurst = steps.filter(overlaps);
    const without = steps.filter((m) => !overlaps(m));
    parts.push(
      `${label} overlapping one: ${withBurst.length} of ${steps.length} (median / mean ${summary(withBurst)} ms, ` +
        `others ${summary(without)} ms; of the slowest 1%: ${slow.filter(overlaps).length} of ${slow.length})`,
    );
  }
  console.log(`  ${parts.join("; ")}`);
}

const all = [...load(prefix).values()];
const traced = [...all]
  .filter((m) => m["g.arrived"] !== undefined && m["g.done"] !== undefined)
  .filter((m) => m["g.arrived"]! >= from && m["g.arrived"]! <= to)
  .sort((a, b) => a["g.arrived"]! - b["g.arrived"]!);
// The runs of one traced process, told apart by the pauses between them (>= 300 ms without a request).
const runs: Marks[][] = [];
for (const m of traced) {
  const run = runs.at(-1);
  const last = run?.at(-1);
  if (run && last && m["g.arrived"]! - last["g.arrived"]! < 300) run.push(m);
  else runs.push([m]);
}
for (const run of runs) {
  if (run.length < 200) continue;
  const start = run[0]!["g.arrived"]!;
  const seconds = (run.at(-1)!["g.arrived"]! - start) / 1000;
  console.log(
    `\nrun from ${new Date(start).toISOString()}, ${seconds.toFixed(1)} s, ${(run.length / seconds).toFixed(0)} req/s`,
  );
  table(run, "all");
  const slow = [...run]
    .sort((a, b) => b["g.done"]! - b["g.arrived"]! - (a["g.done"]! - a["g.arrived"]!))
    .slice(0, Math.max(1, Math.floor(run.length / 100)));
  table(slow, "slowest 1% (gateway arrival to answer)");
  // When the slowest 1% arrived, in 100 ms windows from the run's start: stalls bunch.
  overlapWithSettles(run, slow);
  const counts = new Map<number, number>();
  for (const m of slow) {
    const w = Math.floor((m["g.arrived"]! - start) / 100);
    counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  // The worst windows, step by step (mean ms of the requests that arrived in each): which step stalls.
  const windows = new Map<number, Marks[]>();
  for (const m of run) {
    const w = Math.floor((m["g.arrived"]! - start) / 100);
    windows.set(w, [...(windows.get(w) ?? []), m]);
  }
  const mean = (ms: Marks[], from: string, to: string) =>
    ms.reduce((t, m) => t + (m[to] ?? NaN) - (m[from] ?? NaN), 0) / ms.length;
  const worst = [...windows.entries()]
    .sort((a, b) => mean(b[1], "g.arrived", "g.done") - mean(a[1], "g.arrived", "g.done"))
    .slice(0, 4);
  for (const [w, ms] of worst) {
    console.log(
      `  window ${(w / 10).toFixed(1)} s (at ${Math.round(start + w * 100)}, ${ms.length} req): ` +
        STEPS.map(([f, t]) => `${t.slice(2)} ${mean(ms, f, t).toFixed(1)}`).join(", "),
    );
  }
  console.log(
    `  slowest 1% by 100 ms window (offset s: count): ${[...counts.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([w, n]) => `${(w / 10).toFixed(1)}: ${n}`)
      .join(", ")}`,
  );
}
