/**
 * Per-request stage timestamps for a bounded benchmark run, off unless TURNPIKE_STAGE_TRACE names a
 * file prefix: each role then keeps the moments a request passed its stages in memory (at most
 * MAX_REQUESTS) and writes them as `<prefix>.<role>.<pid>.json` when it exits.
 * `bench/stage-report.ts` joins the roles' files by request id and prints where the time went.
 */
import { writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

const prefix = process.env.TURNPIKE_STAGE_TRACE;

/** Enough for a run of ~1 minute at 2,000 requests/s; later requests are not traced. */
const MAX_REQUESTS = 120_000;

const marks = new Map<string, Record<string, number>>();

/** Epoch ms with sub-millisecond precision (the same clock in every process of the machine). */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

/** True while tracing: callers skip building what only a mark needs. */
export const tracing = prefix !== undefined && prefix !== "";

/** Notes that `requestId` reached `stage` now (or at `at`, epoch ms). A no-op unless tracing. */
export function markStage(requestId: string, stage: string, at?: number): void {
  if (!tracing) return;
  const id = requestId.toLowerCase();
  let stages = marks.get(id);
  if (!stages) {
    if (marks.size >= MAX_REQUESTS) return;
    marks.set(id, (stages = {}));
  }
  stages[stage] ??= at ?? now();
}

/** Writes this process's marks on exit, under its role's name. */
export function traceStagesOf(role: string): void {
  if (!tracing) return;
  process.once("exit", () => {
    writeFileSync(`${prefix}.${role}.${process.pid}.json`, JSON.stringify(Object.fromEntries(marks)));
  });
}
