/**
 * The Open Inference Protocol's statistics extension (GET /v2/models/{name}/stats and
 * /v2/models/stats), read from this gateway process's own Prometheus metrics
 * (`turnpike_infer_outcome_seconds`): per target, the infer requests that succeeded, failed and
 * were left pending (answered 202 or a synchronous timeout), with their cumulative durations in
 * nanoseconds, in the shape Triton-compatible clients read. Counts are per gateway replica since
 * it started; the fleet's totals are the sum over replicas in Prometheus.
 */
import type { Histogram } from "prom-client";

/** A count and its cumulative duration. */
export interface StatDuration {
  count: number;
  ns: number;
}

/** One target's statistics. */
export interface ModelStats {
  name: string;
  version: string;
  inference_count: number;
  execution_count: number;
  inference_stats: { success: StatDuration; fail: StatDuration; pending: StatDuration };
  batch_stats: never[];
}

/** The outcome label of an answered infer request, from its HTTP status. */
export function outcomeOf(statusCode: number, pendingStatus: (code: number) => boolean): string {
  if (statusCode === 200) return "success";
  return pendingStatus(statusCode) ? "pending" : "fail";
}

/** Reads the statistics of `targets` (name and version) from the outcome histogram. */
export async function modelStats(
  outcomes: Histogram<"target" | "outcome">,
  targets: readonly { name: string; version: string }[],
): Promise<{ model_stats: ModelStats[] }> {
  const { values } = await outcomes.get();
  const read = (target: string, outcome: string): StatDuration => {
    const find = (suffix: string) =>
      values.find(
        (v) =>
          v.metricName === `turnpike_infer_outcome_seconds_${suffix}` &&
          v.labels.target === target &&
          v.labels.outcome === outcome,
      )?.value ?? 0;
    return { count: find("count"), ns: Math.round(find("sum") * 1e9) };
  };
  return {
    model_stats: targets.map(({ name, version }) => {
      const success = read(name, "success");
      return {
        name,
        version,
        inference_count: success.count,
        execution_count: success.count,
        inference_stats: { success, fail: read(name, "fail"), pending: read(name, "pending") },
        batch_stats: [],
      };
    }),
  };
}
