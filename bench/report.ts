/**
 * The benchmark's report: its shape and the printed table (the targets it is held against are in
 * report-targets.ts). Pure: bench/run.ts measures, this renders.
 */
import type { MachineInfo } from "./lib/env.js";
import { fmt, renderTable, type Cell } from "./lib/table.js";
import { coreRows, peerCpuRows, peerRows, type CoresReport } from "./report-cores.js";
import { TURNPIKE_PROCESSES } from "./sections/kserve.js";
import type { Target } from "./report-targets.js";
import type { AutoscalingResult } from "./sections/autoscaling.js";
import type { EndToEndResult } from "./sections/end-to-end.js";
import type { FairShareResult } from "./sections/fair-share.js";
import type { KserveResult } from "./sections/kserve.js";
import type { LlmResult } from "./sections/llm.js";
import type { OperatorResult } from "./sections/operator.js";
import type { QuotaLevelResult } from "./sections/quota.js";
import type { RawModelResult } from "./sections/raw-model.js";
import type { RequestListResult } from "./sections/request-list.js";

/** How often the best batch is measured again after section 2. */
export const RAW_REPEATS = 3;

export interface BenchReport extends CoresReport {
  mode: "full" | "quick";
  startedAt: string;
  durationSeconds: number;
  machine: { start: MachineInfo; end: MachineInfo };
  raw?: RawModelResult;
  /** The best batch size measured again after section 2 (the best of RAW_REPEATS). */
  rawAfter?: RawModelResult;
  /** The denominator of every `ratio`: the best raw throughput measured (default session or a worker way). */
  rawLimitLinesPerSecond?: number;
  /** Every best-batch measurement; far apart, the host's speed changed during the run. */
  rawBestBatchLinesPerSecond?: number[];
  endToEnd?: EndToEndResult;
  quota?: QuotaLevelResult[];
  operator?: OperatorResult[];
  llm?: LlmResult;
  kserve?: KserveResult;
  autoscaling?: AutoscalingResult;
  fair?: FairShareResult;
  requestList?: RequestListResult;
  targets: Target[];
  table: string;
}

/** A table row of one load run: its throughput, p50 and p99, then the notes. */
function loadRow(
  section: string,
  label: string,
  load: { okPerSecond: number; latency: { p50Ms: number; p99Ms: number } },
  notes: string,
): Cell[] {
  return [
    section,
    label,
    `${fmt(load.okPerSecond)} req/s`,
    fmt(load.latency.p50Ms, 0),
    fmt(load.latency.p99Ms, 0),
    notes,
  ];
}

export function renderReport(r: BenchReport): string {
  const rows: Cell[][] = [];
  if (r.raw) {
    for (const b of r.raw.batches) {
      const tag = b === r.raw.best ? " (best)" : "";
      rows.push([
        "1 raw model",
        `OCR rec 48x320, batch ${b.batch}${tag}`,
        `${fmt(b.linesPerSecond)} lines/s`,
        fmt(b.latency.p50Ms, 2),
        fmt(b.latency.p99Ms, 2),
        `per batch run, ${r.raw.threads} threads; foreign ${b.foreignCpuPercent}%`,
      ]);
    }
    for (const b of r.raw.workerSessions ?? []) {
      const tag = b === r.raw.workerBest ? " (best)" : "";
      rows.push([
        "1 raw model",
        `batch ${b.batch}${tag}, worker's session`,
        `${fmt(b.linesPerSecond)} lines/s`,
        fmt(b.latency.p50Ms, 2),
        fmt(b.latency.p99Ms, 2),
        `${b.batch > 1 && r.raw.threads > 1 ? "threads never spin" : "threads spin within a run"}; ` +
          `foreign ${b.foreignCpuPercent}%`,
      ]);
    }
    for (const b of r.raw.workerLines ?? []) {
      const tag = b === r.raw.workerBest ? " (best)" : "";
      rows.push([
        "1 raw model",
        `batch ${b.batch}${tag}, worker's lines side by side`,
        `${fmt(b.linesPerSecond)} lines/s`,
        fmt(b.latency.p50Ms, 2),
        fmt(b.latency.p99Ms, 2),
        `each line a run on one of ${r.raw.threads} single-thread sessions (line-pool.ts); ` +
          `foreign ${b.foreignCpuPercent}%`,
      ]);
    }
    if (r.rawAfter) {
      const b = r.rawAfter.best;
      rows.push([
        "1 raw model",
        `batch ${b.batch} again, best of ${RAW_REPEATS} after section 2`,
        `${fmt(b.linesPerSecond)} lines/s`,
        fmt(b.latency.p50Ms, 2),
        fmt(b.latency.p99Ms, 2),
        `all: ${(r.rawBestBatchLinesPerSecond ?? []).map((x) => fmt(x)).join(", ")}; ratios below use ` +
          `${fmt(r.rawLimitLinesPerSecond)} lines/s; foreign ${b.foreignCpuPercent}%`,
      ]);
    }
    rows.push([
      "1 raw model",
      "PNG decode + preprocess",
      "",
      fmt(r.raw.preprocessMsPerLine, 3),
      "",
      "per line; the worker does it before the model",
    ]);
  }
  if (r.endToEnd) {
    const e = r.endToEnd;
    for (const o of e.ocr) {
      rows.push(
        loadRow(
          "2 end to end",
          `OCR sync infer, c=${o.concurrency}`,
          o.load,
          `ratio ${o.ratio}; mean batch ${o.stages?.meanBatchSize ?? "-"}; busy ${o.machineBusyPercent}%, ` +
            `foreign ${o.foreignCpuPercent}%; non-200 ${o.load.other}`,
        ),
      );
    }
    const u = e.echoUnloaded;
    rows.push(
      loadRow(
        "2 end to end",
        "echo unloaded, c=1",
        u.load,
        u.stages
          ? `medians: queue ${u.stages.queueMs}, result->commit ${u.stages.resultToCommitMs}, ` +
              `submit->commit ${u.stages.submitToCommitMs} ms; foreign ${u.foreignCpuPercent}%`
          : "",
      ),
    );
    const c = e.echoCeiling;
    rows.push(
      loadRow(
        "2 end to end",
        "echo ceiling, c=64",
        c.load,
        `busy ${c.machineBusyPercent}%, foreign ${c.foreignCpuPercent}%; non-200 ${c.load.other}`,
      ),
    );
    const h = e.echoHalfLoad;
    const s = h.stages;
    rows.push(
      loadRow(
        "2 end to end",
        `echo added latency @ ${fmt(h.rate, 0)} req/s`,
        h.load,
        s
          ? `medians: queue ${s.queueMs}, model ${s.inferMs}, result->commit ${s.resultToCommitMs}, ` +
              `submit->commit ${s.submitToCommitMs} ms; foreign ${h.foreignCpuPercent}%`
          : "",
      ),
    );
  }
  const f = r.endToEnd?.echoHalfLoadFlush0;
  if (f) {
    const s = f.stages;
    rows.push(
      loadRow(
        "2 end to end",
        "  same, collector flush 0 ms",
        f.load,
        s
          ? `medians: queue ${s.queueMs}, model ${s.inferMs}, result->commit ${s.resultToCommitMs}, ` +
              `submit->commit ${s.submitToCommitMs} ms; foreign ${f.foreignCpuPercent}%`
          : "",
      ),
    );
  }
  rows.push(...coreRows(r));
  if (r.llm) {
    const { inProcess: a, endToEnd: b, config: c } = r.llm;
    const way = (label: string, w: typeof a, note: string): Cell[] => [
      "5 generative",
      label,
      `${fmt(w.tokensPerSecond)} tokens/s`,
      fmt(w.ttft.p50Ms, 0),
      fmt(w.ttft.p99Ms, 0),
      note,
    ];
    const setup = `SmolLM2-135M Q4_1, ${c.sequences} sequences, ${c.threads} threads, ${c.maxTokens} max tokens`;
    rows.push(way("node-llama-cpp in-process", a, `${setup}; p50/p99 = time to first token`));
    rows.push(
      way(
        "end to end, openai client streams",
        b,
        `ratio ${r.llm.ratio}; the queue adds ${r.llm.queueAddedTtftMs.p50} ms p50, ` +
          `${r.llm.queueAddedTtftMs.p99} ms p99 to the first token`,
      ),
    );
  }
  for (const q of r.quota ?? []) {
    rows.push([
      "3 quota",
      `reserve, ${q.clients} clients / ${q.processes} procs`,
      `${fmt(q.reservationsPerSecond, 0)} /s`,
      fmt(q.latency.p50Ms, 2),
      fmt(q.latency.p99Ms, 2),
      `overspend ${q.overspendTokens}, diff ${q.accountingDifference}; redis ${q.redisCpuPercent}%, ` +
        `clients ${q.clientCpuPercent}% of a core; foreign ${q.foreignCpuPercent}%`,
    ]);
  }
  for (const o of r.operator ?? []) {
    rows.push([
      "4 operator",
      `${fmt(o.models, 0)} InferenceModels`,
      o.statusSeconds === undefined ? `> ${o.limitSeconds} s` : `${o.statusSeconds} s`,
      "",
      "",
      (o.statusSeconds === undefined ? `${o.withStatusAtEnd} done (${o.statusPerSecond}/s); ` : "") +
        `ready ${o.readySeconds ?? "-"} s; resync ${o.resyncSeconds ?? "-"} s, ${o.resyncWrites ?? "-"} writes; ` +
        `RSS ${o.rssMb} MB, ${o.operatorSockets} sockets; ${o.writesPerModel} writes, ` +
        `${o.reconcilesPerModel} reconciles/model, ${o.reconcileFailures} failed; ` +
        `CPU ms/model: operator ${o.operatorCpuMsPerModel}, apiserver+etcd ${o.apiserverCpuMsPerModel}; ` +
        `foreign ${o.foreignCpuPercent}%, load ${o.loadAverage?.join(" -> ")}`,
    ]);
  }
  rows.push(
    ...peerRows(r.kserve, ""),
    ...peerRows(r.kserveBinary, ""),
    ...peerRows(r.kserveDedicated, ", dedicated"),
  );
  if (r.autoscaling) {
    const a = r.autoscaling;
    rows.push([
      "7 autoscaling",
      `cold start from zero, median of ${a.coldStartMs.length}`,
      `${fmt(a.coldStartMedianMs / 1000, 1)} s`,
      "",
      "",
      `each: ${a.coldStartMs.map((ms) => fmt(ms / 1000, 1)).join(", ")} s; ${a.config}`,
    ]);
    const o = a.scaleOut;
    rows.push([
      "7 autoscaling",
      `scale-out 1 -> ${o.replicas} ready on a backlog of ${o.backlog}`,
      `${fmt(o.totalMs / 1000, 1)} s`,
      "",
      "",
      `HPA at ${o.replicas} after ${fmt(o.reactionMs / 1000, 1)} s, then ${o.replicas} ready after ` +
        `${fmt(o.startMs / 1000, 1)} s more`,
    ]);
  }
  if (r.fair) {
    const f = r.fair;
    const c = f.share.completions;
    rows.push([
      "9 fair share",
      "a offering 10x b, b 0.75x capacity, slow model",
      `${fmt(((c.a ?? 0) + (c.b ?? 0)) / f.seconds)} req/s`,
      "",
      "",
      `capacity ${f.share.capacityPerSecond}/s; completions a ${c.a ?? 0}, b ${c.b ?? 0} ` +
        `(b ${Math.round(f.share.shareB * 100)}%); attempts/s ` +
        `a ${f.share.attemptsPerSecond.a ?? 0}, b ${f.share.attemptsPerSecond.b ?? 0}; scheduler ` +
        `${f.schedulerMicros.tenants2} µs/req (2 tenants), ${f.schedulerMicros.tenants100} µs (100)`,
    ]);
    const p = f.priority;
    rows.push([
      "9 fair share",
      "high at 4/s during a low flood (2x capacity)",
      `${p.highRequests} high`,
      fmt(p.highQueueWaitMs.p50, 0),
      fmt(p.highQueueWaitMs.p99, 0),
      `high queue wait (enqueue to the model's start), max ${p.highQueueWaitMs.max} ms; batch ${p.batchMs} ms; ` +
        (p.highLatencyMs
          ? `enqueue to finish p50 ${p.highLatencyMs.p50} / p99 ${p.highLatencyMs.p99} / max ${p.highLatencyMs.max} ms; `
          : "") +
        `${p.lowCompletions} low completions`,
    ]);
  }
  const list = r.requestList;
  if (list) {
    for (const [i, p] of list.pages.entries()) {
      rows.push([
        "8 request list",
        `${p.label}, ${list.pageSize} rows`,
        `${fmt(1000 / Math.max(0.001, p.latency.meanMs), 0)} pages/s`,
        fmt(p.latency.p50Ms, 2),
        fmt(p.latency.p99Ms, 2),
        i === 0
          ? `${fmt(list.rows, 0)} records (${fmt(list.bigTenantRows, 0)} this tenant's), inserted in ` +
            `${list.insertSeconds} s; plan: ${list.plan.node} on ${list.plan.index ?? "no index"}` +
            `${list.plan.sorts ? ", with a sort" : ", no sort"}`
          : `${p.latency.count} pages`,
      ]);
    }
  }
  const table = renderTable(
    ["section", "measurement", "throughput / time", "p50 ms", "p99 ms", "notes"],
    rows,
  );
  const lines = [table, ""];
  if (r.endToEnd || r.fair) {
    const e = r.endToEnd;
    // The fair-share phases run a slow model (its worker column is mostly the model) with two
    // tenants bounded by maxQueuedPerModel: gateway, collector and Redis show what fairness adds.
    const runs = [
      ...(e ? [...e.ocr, e.echoUnloaded, e.echoCeiling, e.echoHalfLoad] : []),
      ...(r.dedicated?.ocr ?? []),
      ...(r.fair?.cpu ?? []),
    ];
    const groups = ["gateway", "worker", "collector", "rabbitmq", "redis", "postgres", "load generator"];
    lines.push(
      renderTable(
        ["CPU ms per answered request (end to end)", ...groups, "total"],
        runs.map((run) => {
          const cpu = run.cpuMsPerRequest;
          const total = groups.reduce((a, g) => a + (cpu[g] ?? 0), 0);
          return [run.label, ...groups.map((g) => fmt(cpu[g], 2)), fmt(total, 2)];
        }),
        1,
      ),
      "",
    );
  }
  const peerCpu = [
    ...peerCpuRows(r.kserve, ""),
    ...peerCpuRows(r.kserveBinary, ""),
    ...peerCpuRows(r.kserveDedicated, ", dedicated"),
  ];
  if (peerCpu.length) {
    const header = ["CPU ms per answered request (6, Turnpike)", ...TURNPIKE_PROCESSES, "total", "KServe"];
    lines.push(renderTable(header, peerCpu, 1), "");
  }
  lines.push(
    renderTable(
      ["target", "measured", "met"],
      r.targets.map((t) => [t.target, t.measured, t.met ? "yes" : "NO"]),
      3,
    ),
    "",
    `${r.mode} run, ${r.durationSeconds} s; ${r.machine.start.nproc} cores (${r.machine.start.cpuModel}), ` +
      `${fmt(r.machine.start.memoryMb, 0)} MB, Node ${r.machine.start.node}; load average ` +
      `${r.machine.start.loadAverage.join(" ")} at start, ${r.machine.end.loadAverage.join(" ")} at end`,
  );
  return lines.join("\n");
}
