/**
 * The report's rows and targets for the dedicated-cores mode (section 2b), the worker's CPU per
 * line (section 2c) and the KServe comparison (section 6, shared and dedicated). Pure, like
 * report.ts, which includes them.
 */
import { fmt, type Cell } from "./lib/table.js";
import type { DedicatedResult } from "./sections/dedicated-cores.js";
import { TURNPIKE_PROCESSES, type KserveResult } from "./sections/kserve.js";
import type { WorkerCpuResult } from "./sections/worker-cpu.js";

export interface CoresReport {
  dedicated?: DedicatedResult;
  /** The KServe peer again in dedicated-cores mode (report.ts renders it like section 6). */
  kserveDedicated?: KserveResult;
  /** The KServe peer again, shared cores, both sent the tensor as OIP binary data. */
  kserveBinary?: KserveResult;
  workerCpu?: WorkerCpuResult[];
}

export interface CoresTarget {
  target: string;
  measured: string;
  met: boolean;
}

/** Rows of sections 2b and 2c. */
export function coreRows(r: CoresReport): Cell[][] {
  const rows: Cell[][] = [];
  const d = r.dedicated;
  if (d?.skipped) rows.push(["2b dedicated", "skipped", "", "", "", d.skipped]);
  if (d?.raw) {
    for (const b of d.raw.batches) {
      rows.push([
        "2b dedicated",
        `raw OCR rec, batch ${b.batch}${b === d.raw!.fastest ? " (best)" : ""}${b.batch === d.bestBatch ? " (worker's)" : ""}, cpu ${d.workerCpus}`,
        `${fmt(b.linesPerSecond)} lines/s`,
        fmt(b.latency.p50Ms, 2),
        fmt(b.latency.p99Ms, 2),
        `1 thread, pinned; foreign ${b.foreignCpuPercent}%`,
      ]);
    }
    for (const b of d.raw.workerLines ?? []) {
      rows.push([
        "2b dedicated",
        `raw OCR rec, batch ${b.batch} as lines${b === d.raw.fastest ? " (best)" : ""}${b.batch === d.bestBatch ? " (worker's)" : ""}, cpu ${d.workerCpus}`,
        `${fmt(b.linesPerSecond)} lines/s`,
        fmt(b.latency.p50Ms, 2),
        fmt(b.latency.p99Ms, 2),
        `1 thread, pinned, one line after another (line-pool.ts); foreign ${b.foreignCpuPercent}%`,
      ]);
    }
    rows.push([
      "2b dedicated",
      `model CPU per line, batch ${d.bestBatch}`,
      `${fmt(d.modelCpuMsPerLine, 2)} ms`,
      "",
      "",
      `the worker's session options; raw best before/after: ${d.rawBestLinesPerSecond.map((x) => fmt(x)).join(", ")} lines/s`,
    ]);
  }
  for (const o of d?.ocr ?? []) {
    rows.push([
      "2b dedicated",
      `OCR sync infer, c=${o.concurrency}`,
      `${fmt(o.load.okPerSecond)} req/s`,
      fmt(o.load.latency.p50Ms, 0),
      fmt(o.load.latency.p99Ms, 0),
      `ratio ${o.ratio} (${o.adjacentRatio ?? "-"} to the raw run right before it, ${o.adjacentRawLinesPerSecond ?? "-"} lines/s); worker ${fmt(o.workerCpuMsPerLine, 2)} CPU ms/line = ${o.workerToModelCpu}x the ` +
        `model's (main ${o.mid.workerThreadsMsPerLine.main}, model ${o.mid.workerThreadsMsPerLine.model}, other ${o.mid.workerThreadsMsPerLine.other}); ` +
        `mid-run cpu ${d!.workerCpus} ${o.mid.workerCoreBusyPercent}% busy, cpu ${d!.otherCpus} ${o.mid.otherCoreBusyPercent}%, ` +
        `batch ${o.mid.meanBatch}; mean batch ${o.stages?.meanBatchSize ?? "-"}; foreign ${o.foreignCpuPercent}%; non-200 ${o.load.other}`,
    ]);
  }
  if (d && !d.skipped) {
    rows.push([
      "2b dedicated",
      `  worker on cpu ${d.workerCpus}, the rest on cpu ${d.otherCpus}`,
      "",
      "",
      "",
      `re-pinned for the runs and restored: ${d.repinned.join(", ")}; load average ${d.loadAverage.join(" ")}`,
    ]);
  }
  for (const w of r.workerCpu ?? []) {
    const m = w.median;
    rows.push([
      "2c worker CPU",
      `${w.body === "png" ? "PNG" : "tensor"} body, batch ${w.batch}, ${w.threads} thread${w.threads > 1 ? "s" : ""}` +
        (w.cpus ? `, cpu ${w.cpus}` : ""),
      `${fmt(m.workerCpuMsPerLine, 2)} ms/line`,
      "",
      "",
      `${w.ratio}x the model's ${fmt(m.modelCpuMsPerLine, 2)} ms (median of ${w.rounds.length}: ` +
        `${w.rounds.map((x) => x.ratio).join(", ")}); main ${m.workerThreadsMsPerLine.main}, model thread ` +
        `${m.workerThreadsMsPerLine.model}, other ${m.workerThreadsMsPerLine.other}; failed ${w.failed}; ` +
        `load ${w.loadAverage.join(" ")}`,
    ]);
  }
  return rows;
}

/** Targets of issue 15 for the two modes. */
export function coreTargets(r: CoresReport): CoresTarget[] {
  const out: CoresTarget[] = [];
  const d = r.dedicated;
  if (d?.ocr.length) {
    const best = d.ocr.reduce((a, b) => (b.ratio > a.ratio ? b : a));
    // Results written before the adjacent raw run existed have no adjacentRatio.
    const adjacent = d.ocr.reduce((a, b) => ((b.adjacentRatio ?? 0) > (a.adjacentRatio ?? 0) ? b : a));
    out.push({
      target: "dedicated cores: end to end >= 95% of raw at the best batch",
      // Both references: the fastest raw pass before/after all loads (what `met` is judged on),
      // and the raw run at the worker's batch right before each load (the same host state).
      measured:
        `${(best.ratio * 100).toFixed(1)}% of the raw best (c=${best.concurrency}, worker batch ${d.bestBatch}); ` +
        (adjacent.adjacentRatio === undefined
          ? "no raw run right before each load in this result"
          : `${(adjacent.adjacentRatio * 100).toFixed(1)}% of the raw run right before the load (c=${adjacent.concurrency})`),
      met: best.ratio >= 0.95,
    });
  }
  const ratios = [
    ...(r.workerCpu ?? []).map((w) => ({
      label: `${w.body}${w.cpus ? " dedicated" : " shared"}`,
      ratio: w.ratio,
    })),
    // Compared with the model at the best batch, so only runs whose batches were full.
    ...(d?.ocr ?? [])
      .filter((o) => (o.stages?.meanBatchSize ?? 0) >= d!.bestBatch - 0.5)
      .map((o) => ({ label: `e2e dedicated c=${o.concurrency}`, ratio: o.workerToModelCpu })),
  ];
  if (ratios.length) {
    out.push({
      target: "worker CPU per OCR line <= 1.1x the model's own",
      measured: ratios.map((x) => `${x.label} ${x.ratio}x`).join(", "),
      met: ratios.every((x) => x.ratio <= 1.1),
    });
  }
  return out;
}

/** How a section 6 result's rows are told apart: its body when binary, then `tag` (dedicated cores). */
function peerTag(peer: KserveResult, tag: string): string {
  return `${peer.encoding === "binary" ? ", binary" : ""}${tag}`;
}

/** Rows of the KServe comparison (section 6); `dedicatedTag` marks the dedicated-cores runs. */
export function peerRows(peer: KserveResult | undefined, dedicatedTag: string): Cell[][] {
  const rows: Cell[][] = [];
  if (!peer) return rows;
  const tag = peerTag(peer, dedicatedTag);
  if (peer?.skipped) rows.push(["6 vs KServe", `skipped${tag}`, "", "", "", peer.skipped]);
  if (peer.batch)
    rows.push([
      "6 vs KServe",
      `Turnpike's maxBatchSize ${peer.batch.size}${tag}`,
      "",
      "",
      "",
      peer.batch.why,
    ]);
  for (const l of peer?.levels ?? []) {
    const foreign = (system: string) =>
      Math.max(...l.runs.filter((run) => run.system === system).map((run) => run.foreignCpuPercent));
    const cpu = (system: string) =>
      fmt(
        l.runs.filter((run) => run.system === system).reduce((a, run) => a + run.cpuMsPerRequest, 0) /
          Math.max(1, l.runs.filter((run) => run.system === system).length),
        1,
      );
    rows.push([
      "6 vs KServe",
      `Turnpike OCR tensor body, c=${l.concurrency}${tag}`,
      `${fmt(l.turnpikePerSecond)} req/s`,
      fmt(l.turnpikeP50Ms, 0),
      fmt(l.turnpikeP99Ms, 0),
      `ratio ${l.throughputRatio}x KServe, p50 ${l.p50DifferenceMs >= 0 ? "+" : ""}${l.p50DifferenceMs} ms; ` +
        `${cpu("turnpike")} CPU ms/req; foreign <= ${foreign("turnpike")}%`,
    ]);
    rows.push([
      "6 vs KServe",
      `KServe ModelServer 0.21, c=${l.concurrency}${tag}`,
      `${fmt(l.kservePerSecond)} req/s`,
      fmt(l.kserveP50Ms, 0),
      fmt(l.kserveP99Ms, 0),
      `${cpu("kserve")} CPU ms/req; foreign <= ${foreign("kserve")}%; ${peer.rounds} alternating runs of ${Math.max(peer.seconds, Math.ceil(l.concurrency / 4))} s`,
    ]);
  }
  return rows;
}

/**
 * Rows of the CPU split of section 6's Turnpike runs: CPU ms per answered request of each process
 * (mean over the rounds), with KServe's total beside it.
 */
export function peerCpuRows(peer: KserveResult | undefined, dedicatedTag: string): Cell[][] {
  const mean = (values: number[]) => values.reduce((a, v) => a + v, 0) / Math.max(1, values.length);
  if (!peer) return [];
  const tag = peerTag(peer, dedicatedTag);
  return peer.levels.map((l) => {
    const turnpike = l.runs.filter((run) => run.system === "turnpike");
    const split = TURNPIKE_PROCESSES.map((k) => mean(turnpike.map((run) => run.cpuMsByProcess?.[k] ?? 0)));
    const kserve = mean(l.runs.filter((run) => run.system === "kserve").map((run) => run.cpuMsPerRequest));
    return [
      `c=${l.concurrency}${tag}`,
      ...split.map((v) => fmt(v, 2)),
      fmt(
        split.reduce((a, v) => a + v, 0),
        2,
      ),
      fmt(kserve, 2),
    ];
  });
}
