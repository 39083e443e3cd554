/**
 * `npm run bench` (full) and `npm run bench:quick` (under two minutes): measures the model's
 * physical limit, the system end to end, the quota store and the operator, prints one table and
 * writes bench/results/<timestamp>.json and latest.json. Measurements only, no assertions.
 *
 * Flags: --quick; --only=raw,e2e,dedicated,worker,quota,operator,llm,kserve,autoscaling,requests,fair
 * (sections to run; the end-to-end ratio needs raw; e2e includes dedicated, the end-to-end run on
 * dedicated cores; worker is the OCR worker's CPU per line against the model's; kserve, the peer,
 * installs its Python environment on first use);
 * --operator-models=100,1000 (how many InferenceModels the operator section creates, per round);
 * --operator-limit=600 (seconds the operator section waits per round before reporting progress);
 * --peer-batch=sample|raw|N (section 6's OCR worker maxBatchSize: the sample's, the default; section
 * 1's best as before; or N; see bench/lib/peer-batch.ts).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderLinePng } from "../test/fixtures/text-line.js";
import { BENCH_LINE, installInterruptHandler, machine, repoRoot, say } from "./lib/env.js";
import { RAW_REPEATS, renderReport, type BenchReport } from "./report.js";
import { targets } from "./report-targets.js";
import { autoscaling } from "./sections/autoscaling.js";
import { canPin } from "./lib/cpu-pinning.js";
import { dedicatedCores, OTHER_CPUS, WORKER_CPUS } from "./sections/dedicated-cores.js";
import { endToEnd } from "./sections/end-to-end.js";
import { fairShare } from "./sections/fair-share.js";
import { llmBench } from "./sections/llm.js";
import { kservePeer } from "./sections/kserve.js";
import { operatorBench } from "./sections/operator.js";
import { quota } from "./sections/quota.js";
import { requestList } from "./sections/request-list.js";
import { RAW_BATCH_SIZES, rawModel, type RawModelResult } from "./sections/raw-model.js";
import { choosePeerBatch, sampleMaxBatchSize } from "./lib/peer-batch.js";
import { workerCpu } from "./sections/worker-cpu.js";

interface Plan {
  rawSeconds: number;
  ocrConcurrency: number[];
  ocrSeconds: number;
  echoSeconds: number;
  quotaLevels: number[];
  quotaProcesses: number;
  quotaSeconds: number;
  operatorCounts: number[];
  /** Generative section: rounds of parallel streams, then single requests for time to first token. */
  llmRounds: number;
  llmFirsts: number;
  /** Longest wait for the operator per round (default: max(120 s, 0.24 s per model)). */
  operatorLimitSeconds?: number;
  /** The KServe peer: connections, seconds per run, alternating rounds per level. */
  peerConcurrency: number[];
  peerSeconds: number;
  peerRounds: number;
  /** Cold starts measured (their median is reported). */
  coldStarts: number;
  /** Seconds of each fair-share phase (after 2 s of warm-up). */
  fairSeconds: number;
  /** Worker CPU per line: lines per block and alternating rounds. */
  workerLines: number;
  workerRounds: number;
  /** Request records in the request-list section's scratch schema, and seconds per measurement. */
  listRows: number;
  listSeconds: number;
}

const FULL_PLAN: Plan = {
  rawSeconds: 6,
  ocrConcurrency: [1, 8, 32],
  ocrSeconds: 15,
  echoSeconds: 15,
  quotaLevels: [1, 16, 64],
  quotaProcesses: 4,
  quotaSeconds: 8,
  llmRounds: 4,
  llmFirsts: 20,
  operatorCounts: [100, 1000, 5000],
  peerConcurrency: [1, 8, 32],
  peerSeconds: 10,
  peerRounds: 2,
  coldStarts: 5,
  fairSeconds: 20,
  workerLines: 200,
  workerRounds: 3,
  listRows: 1_000_000,
  listSeconds: 5,
};

/** The quick plan: the same sections and levels, shorter runs, 100 models. */
const PLANS: Record<"full" | "quick", Plan> = {
  full: FULL_PLAN,
  quick: {
    ...FULL_PLAN,
    rawSeconds: 1.5,
    ocrSeconds: 3,
    echoSeconds: 3,
    quotaSeconds: 2,
    operatorCounts: [100],
    operatorLimitSeconds: 45,
    llmRounds: 1,
    llmFirsts: 5,
    peerSeconds: 3,
    coldStarts: 3,
    fairSeconds: 6,
    workerLines: 60,
    listRows: 200_000,
    listSeconds: 1,
  },
};

const SECTIONS = [
  "raw",
  "e2e",
  "dedicated",
  "worker",
  "quota",
  "operator",
  "llm",
  "kserve",
  "autoscaling",
  "requests",
  "fair",
] as const;
type Section = (typeof SECTIONS)[number];

function parseArgs(argv: string[]): {
  mode: "full" | "quick";
  only: Set<Section>;
  operatorCounts?: number[];
  operatorLimitSeconds?: number;
  peerBatch: string;
} {
  const mode = argv.includes("--quick") ? "quick" : "full";
  const only = argv.find((a) => a.startsWith("--only="));
  const wanted = only ? only.slice("--only=".length).split(",") : [...SECTIONS];
  for (const w of wanted) {
    if (!SECTIONS.includes(w as Section)) throw new Error(`unknown section ${w}; use ${SECTIONS.join(",")}`);
  }
  const counts = argv.find((a) => a.startsWith("--operator-models="));
  const operatorCounts = counts
    ?.slice("--operator-models=".length)
    .split(",")
    .map((n) => Number(n));
  if (operatorCounts?.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`bad ${counts}`);
  const limit = argv.find((a) => a.startsWith("--operator-limit="));
  const operatorLimitSeconds = limit ? Number(limit.slice("--operator-limit=".length)) : undefined;
  if (operatorLimitSeconds !== undefined && !(operatorLimitSeconds > 0)) throw new Error(`bad ${limit}`);
  const peerBatch =
    argv.find((a) => a.startsWith("--peer-batch="))?.slice("--peer-batch=".length) ?? "sample";
  return { mode, only: new Set(wanted as Section[]), operatorCounts, operatorLimitSeconds, peerBatch };
}

async function main(): Promise<void> {
  const { mode, only, operatorCounts, operatorLimitSeconds, peerBatch } = parseArgs(process.argv.slice(2));
  installInterruptHandler();
  const plan = PLANS[mode];
  const startedAt = new Date();
  const start = machine();
  say(`${mode} run on ${start.nproc} cores, load average ${start.loadAverage.join(" ")}, Node ${start.node}`);
  const png = renderLinePng(BENCH_LINE);
  const report: Partial<BenchReport> = { mode, startedAt: startedAt.toISOString() };

  if (only.has("raw") || only.has("e2e"))
    report.raw = await rawModel(png, plan.rawSeconds, RAW_BATCH_SIZES, 2, { workerSessions: true });
  // The fastest way measured: onnxruntime's default session, or one of the worker's own ways.
  const rawFastest = report.raw?.fastest;
  if (only.has("e2e")) {
    report.endToEnd = await endToEnd({
      png,
      rawBestLinesPerSecond: rawFastest!.linesPerSecond,
      bestBatch: rawFastest!.batch,
      ocrConcurrency: plan.ocrConcurrency,
      ocrSeconds: plan.ocrSeconds,
      echoSeconds: plan.echoSeconds,
      collectorFlushVariant: mode === "full",
    });
  }
  if (report.raw && report.endToEnd) {
    // The model again, after section 2: the physical limit is the best of all measurements, so a
    // transient slowdown of the shared machine cannot flatter the ratio. (On these machines the
    // in-process model sometimes runs at about half speed for minutes, with no process to blame.)
    const repeats: RawModelResult[] = [];
    for (let i = 0; i < RAW_REPEATS; i++)
      repeats.push(await rawModel(png, plan.rawSeconds, [report.raw.best.batch]));
    report.rawAfter = repeats.reduce((a, b) => (b.best.linesPerSecond > a.best.linesPerSecond ? b : a));
    report.rawBestBatchLinesPerSecond = [report.raw.best, ...repeats.map((r) => r.best)].map(
      (b) => b.linesPerSecond,
    );
    const limit = Math.max(...report.rawBestBatchLinesPerSecond, rawFastest!.linesPerSecond);
    report.rawLimitLinesPerSecond = limit;
    for (const o of report.endToEnd.ocr) o.ratio = Math.round((o.load.okPerSecond / limit) * 1000) / 1000;
  }
  if (only.has("e2e") || only.has("dedicated")) {
    report.dedicated = await dedicatedCores({
      png,
      rawSeconds: plan.rawSeconds,
      ocrConcurrency: plan.ocrConcurrency,
      ocrSeconds: plan.ocrSeconds,
    });
  }
  if (only.has("worker")) {
    // Shared mode (2 threads, unpinned) and dedicated (1 thread on the worker's core), PNG and
    // tensor bodies; the batch is section 1's fastest (any way), else 4.
    report.workerCpu = [];
    const batch = rawFastest?.batch ?? 4;
    for (const [threads, cpus] of [
      [2, undefined],
      [1, "1"],
    ] as const) {
      for (const body of ["png", "tensor"] as const) {
        report.workerCpu.push(
          await workerCpu({
            png,
            batch,
            threads,
            cpus,
            body,
            lines: plan.workerLines,
            rounds: plan.workerRounds,
            modelSeconds: plan.rawSeconds,
          }),
        );
      }
    }
  }
  if (only.has("quota")) report.quota = await quota(plan.quotaLevels, plan.quotaProcesses, plan.quotaSeconds);
  if (only.has("operator"))
    report.operator = await operatorBench(
      operatorCounts ?? plan.operatorCounts,
      operatorLimitSeconds ?? plan.operatorLimitSeconds,
    );
  if (only.has("llm")) report.llm = await llmBench(plan.llmRounds, plan.llmFirsts);
  if (only.has("kserve")) {
    const raw = report.raw;
    const peer = {
      png,
      concurrency: plan.peerConcurrency,
      seconds: plan.peerSeconds,
      rounds: plan.peerRounds,
      batch: choosePeerBatch(
        peerBatch,
        sampleMaxBatchSize(),
        raw && {
          batch: raw.best.batch,
          what: `(default session)` + (raw.workerBest ? `, ${raw.workerBest.batch} (worker's sessions)` : ""),
        },
      ),
    };
    report.kserve = await kservePeer(peer);
    // The same runs with OIP's binary tensor extension, which both servers read.
    if (!report.kserve.skipped) report.kserveBinary = await kservePeer({ ...peer, encoding: "binary" });
    if (!report.kserve.skipped && machine().nproc >= 2 && canPin()) {
      const dedicatedBest = report.dedicated?.bestBatch;
      report.kserveDedicated = await kservePeer({
        ...peer,
        // --peer-batch=raw keeps the old choice here too: section 2b's batch on the worker's core.
        batch:
          peerBatch === "raw" && dedicatedBest
            ? { size: dedicatedBest, why: `--peer-batch=raw: section 2b's batch on one core` }
            : peer.batch,
        dedicated: { workerCpus: WORKER_CPUS, otherCpus: OTHER_CPUS },
      });
    }
  }
  if (only.has("autoscaling")) report.autoscaling = await autoscaling(plan.coldStarts);
  if (only.has("fair")) report.fair = await fairShare(plan.fairSeconds);
  if (only.has("requests")) report.requestList = await requestList(plan.listRows, plan.listSeconds);

  const end = machine();
  const full: BenchReport = {
    ...(report as BenchReport),
    durationSeconds: Math.round((Date.now() - startedAt.getTime()) / 100) / 10,
    machine: { start, end },
    targets: targets(report),
    table: "",
  };
  full.table = renderReport(full);
  const dir = join(repoRoot, "bench/results");
  mkdirSync(dir, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, "-");
  const json = `${JSON.stringify(full, null, 2)}\n`;
  writeFileSync(join(dir, `${stamp}.json`), json);
  writeFileSync(join(dir, "latest.json"), json);
  process.stdout.write(`${full.table}\n`);
  say(`wrote bench/results/${stamp}.json and latest.json in ${full.durationSeconds} s`);
}

await main();
