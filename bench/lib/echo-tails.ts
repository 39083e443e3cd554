/**
 * Where a run's slow requests spend their time (bench/echo-compare.ts --tails), told apart without
 * tracing each request:
 * - from the records: percentiles of queue_ms (the gateway's submit to the worker taking the task:
 *   the Redis round trip, the publish and its quorum commit, the worker's wait for its loop) and of
 *   submit-to-finish (the worker's clock when the result exists). What the client's percentile has
 *   on top is the gateway's part before submit and the way back (reply queue, HTTP answer);
 * - from the gateway's /metrics, over the run: GC pauses (count, total, longest bucket) and the
 *   event-loop delay percentiles (prom-client resets its histogram on every scrape; each sample is
 *   one sampling interval plus the delay, so the interval is taken off);
 * - from the client (bench/lib/paced-load.ts): how many 100 ms windows hold the slowest 1% of the
 *   requests (few windows = stalls: a pause, a burst of others' work; many = steady queueing), and
 *   the generator's own delays (its timer late, every connection busy), which count in latency.
 */
import type pg from "pg";
import { EVENT_LOOP_SAMPLE_MS } from "../../runtime/shared/metrics.js";
import { round } from "./stats.js";

/** p50/p90/p99/max in ms. */
export type Spread = [number, number, number, number];

/** The records' side of the tails. */
export interface RecordTails {
  queue: Spread;
  submitToFinish: Spread;
}

/** Percentiles of the records of `target` submitted between `from` and `to` (epoch ms). */
export async function recordTails(
  pool: pg.Pool,
  schema: string,
  target: string,
  from: number,
  to: number,
): Promise<RecordTails> {
  const spread = (expr: string) =>
    [0.5, 0.9, 0.99, 1].map((p) => `percentile_cont(${p}) WITHIN GROUP (ORDER BY ${expr})`).join(", ");
  const { rows } = await pool.query(
    `SELECT ARRAY[${spread("queue_ms")}] AS queue,
            ARRAY[${spread("extract(epoch FROM finished_at - submitted_at) * 1000")}] AS finish
       FROM "${schema}".requests
      WHERE target = $1 AND submitted_at BETWEEN to_timestamp($2 / 1000.0) AND to_timestamp($3 / 1000.0)`,
    [target, from, to],
  );
  const r = rows[0] as { queue: (number | null)[]; finish: (number | null)[] };
  const toSpread = (values: (number | null)[]) => values.map((v) => round(Number(v ?? 0), 1)) as Spread;
  return { queue: toSpread(r.queue), submitToFinish: toSpread(r.finish) };
}

/** What the gateway's /metrics tells about pauses; cumulative counters, read at both ends of a run. */
export interface PauseSample {
  gcCount: number;
  gcSeconds: number;
  /** GC pauses over 10 ms so far (prom-client's buckets: 0.001, 0.01, 0.1, 1, 2, 5 s). */
  gcOver10ms: number;
  /** Event-loop delay since the previous scrape beyond the sampling interval, in ms: p50, p99, max. */
  lagMs: [number, number, number];
}

/** Reads the gateway's /metrics (no auth); undefined when it does not answer. */
export async function samplePauses(gatewayUrl: string): Promise<PauseSample | undefined> {
  const text = await fetch(`${gatewayUrl}/metrics`)
    .then((r) => r.text())
    .catch(() => undefined);
  if (text === undefined) return undefined;
  const sum = (pattern: RegExp) =>
    [...text.matchAll(pattern)].reduce((total, m) => total + Number(m[1] ?? 0), 0);
  const one = (name: string) =>
    Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text)?.[1] ?? 0) * 1000;
  const lateBy = (sampleMs: number) => round(Math.max(0, sampleMs - EVENT_LOOP_SAMPLE_MS), 1);
  const total = sum(/^nodejs_gc_duration_seconds_count\{[^}]*\} (\S+)$/gm);
  const upTo10ms = sum(/^nodejs_gc_duration_seconds_bucket\{(?=[^}]*le="0\.01")[^}]*\} (\S+)$/gm);
  return {
    gcCount: total,
    gcSeconds: sum(/^nodejs_gc_duration_seconds_sum\{[^}]*\} (\S+)$/gm),
    gcOver10ms: total - upTo10ms,
    lagMs: [
      lateBy(one("nodejs_eventloop_lag_p50_seconds")),
      lateBy(one("nodejs_eventloop_lag_p99_seconds")),
      lateBy(one("nodejs_eventloop_lag_max_seconds")),
    ],
  };
}

/** One line: the records' spreads, the gateway's pauses over the run, the client's slow windows. */
export function tailsLine(
  records: RecordTails,
  before: PauseSample | undefined,
  after: PauseSample | undefined,
  slowWindows: { slow: number; windows: number } | undefined,
  generator?: { lateP99Ms: number; waitedForConnection: number },
): string {
  const fmt = (s: Spread) => s.join("/");
  const gc =
    before && after
      ? `gateway GC ${after.gcCount - before.gcCount} pauses ${round((after.gcSeconds - before.gcSeconds) * 1000, 1)} ms ` +
        `(${after.gcOver10ms - before.gcOver10ms} over 10 ms), loop delay p50/p99/max ${after.lagMs.join("/")} ms`
      : "gateway metrics unavailable";
  const windows = slowWindows
    ? `slowest ${slowWindows.slow} requests in ${slowWindows.windows} windows of 100 ms`
    : "";
  return (
    `tails p50/p90/p99/max ms: queue ${fmt(records.queue)}, submit->finish ${fmt(records.submitToFinish)} | ` +
    `${gc}${windows ? ` | ${windows}` : ""}` +
    (generator
      ? ` | generator: timer late p99 ${generator.lateP99Ms} ms, ${generator.waitedForConnection} waited for a connection`
      : "")
  );
}
