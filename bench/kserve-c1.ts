/**
 * Section 6 at one connection only, shared cores: Turnpike (this checkout) and the KServe peer in
 * alternating rounds, each run's client-side p50 / p90 / p99 / mean / max, so the tail that makes a
 * c=1 mean (and so the throughput, 1 / mean) worse can be compared without the full section.
 *
 *   npx tsx bench/kserve-c1.ts [--seconds=10] [--rounds=4] [--encoding=json|binary]
 *
 * Measurements only; nothing asserts.
 */
import { renderLinePng } from "../test/fixtures/text-line.js";
import { BENCH_LINE, installInterruptHandler, say } from "./lib/env.js";
import { arg } from "./lib/compare-sides.js";
import { kservePeer, type PeerEncoding } from "./sections/kserve.js";
import { choosePeerBatch, sampleMaxBatchSize } from "./lib/peer-batch.js";

installInterruptHandler();
const result = await kservePeer({
  png: renderLinePng(BENCH_LINE),
  concurrency: [1],
  seconds: Number(arg("seconds", "10")),
  rounds: Number(arg("rounds", "4")),
  batch: choosePeerBatch(arg("peer-batch", "sample"), sampleMaxBatchSize()),
  encoding: arg("encoding", "json") as PeerEncoding,
});
for (const level of result.levels) {
  for (const run of level.runs) {
    const l = run.load.latency;
    say(
      `${run.system.padEnd(8)} round ${run.round}: ${run.load.okPerSecond} req/s p50/p90/p99/mean/max ` +
        `${l.p50Ms}/${l.p90Ms}/${l.p99Ms}/${l.meanMs}/${l.maxMs} ms, CPU ${run.cpuMsPerRequest} ms/req, ` +
        `foreign ${run.foreignCpuPercent}%`,
    );
  }
  say(
    `c=1: ratio ${level.throughputRatio}x (${level.turnpikePerSecond} vs ${level.kservePerSecond} req/s), ` +
      `p50 ${level.turnpikeP50Ms} vs ${level.kserveP50Ms} ms (${level.p50DifferenceMs >= 0 ? "+" : ""}${level.p50DifferenceMs})`,
  );
}
