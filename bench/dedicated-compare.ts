/**
 * Section 2b's OCR run on dedicated cores, side by side: two or more checkouts of the runtime, each
 * with its worker pinned to the worker's core (one onnxruntime thread) and its gateway and
 * collector on the other, loaded in turn with the same PNG requests, and the model alone on the
 * worker's core between them, so a change and what it replaced meet the same moment of a shared
 * machine. Reports throughput against the raw run next to it, and the worker's CPU per line by
 * thread over the middle 60% of each load.
 *
 *   npx tsx bench/dedicated-compare.ts --roots=/path/to/before,. [--seconds=10] [--rounds=3] [--c=8] [--batch=4]
 *     [--worker-args=-,--single-threaded-gc]   (node options of each side's worker; a root may repeat)
 *     [--bodies=png,tensor]   (each side's request body: the PNG line, or the model's input tensor
 *                              as KServe gets it, i.e. the pre-processing done before the worker)
 *     [--gateway-env=-,TURNPIKE_OCR_PREPROCESS=gateway]   (extra environment of each side's gateway)
 *
 * Each root must be a checkout with node_modules. Measurements only; nothing asserts.
 */
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { renderLinePng } from "../test/fixtures/text-line.js";
import { runLoad } from "./lib/autocannon.js";
import { pinProcesses } from "./lib/cpu-pinning.js";
import { BENCH_LINE, installInterruptHandler, onInterrupt, say, sleep } from "./lib/env.js";
import { CpuMeter, cpuMs, pidsOf, threadCpuMs } from "./lib/processes.js";
import { settle } from "./lib/settle.js";
import { round } from "./lib/stats.js";
import { batchCounts, OTHER_CPUS, threadSplit, WORKER_CPUS } from "./sections/dedicated-cores.js";
import { API_KEY, Installation, ocrModel, TENANT } from "./sections/end-to-end.js";
import { rawModel } from "./sections/raw-model.js";
import { arg, rootsArg, startRoleOf } from "./lib/compare-sides.js";
import { ocrPngBody } from "../hack/run/sample-request.js";
import { tensorBody } from "./sections/kserve.js";

async function startSide(
  root: string,
  batch: number,
  workerArgs: string[],
  body: unknown,
  gatewayEnv: Record<string, string>,
) {
  const install = new Installation({ models: [ocrModel(batch, 1)], tenants: [{ name: TENANT }] });
  onInterrupt(() => install.teardown(["ocr"]));
  await install.seedTenant();
  await startRoleOf(install, root, "collector", { cpus: OTHER_CPUS });
  const worker = await startRoleOf(install, root, "worker", {
    cpus: WORKER_CPUS,
    env: { TURNPIKE_MODEL: "ocr", TURNPIKE_WORKER_ID: "bench-dedicated" },
    nodeArgs: workerArgs,
  });
  const gateway = await startRoleOf(install, root, "gateway", {
    cpus: OTHER_CPUS,
    env: {
      TURNPIKE_RATE_LIMIT_PER_IP: "1000000000",
      TURNPIKE_RATE_LIMIT_PER_TENANT: "1000000000",
      ...gatewayEnv,
    },
  });
  const label = Object.entries(gatewayEnv).map(([k, v]) => `${k}=${v}`);
  return { root, args: [...workerArgs, ...label], body, install, worker, gateway };
}

/** Minor page faults of a process so far (/proc/<pid>/stat field 10, all threads). */
function minorFaults(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[7]);
}

async function main(): Promise<void> {
  installInterruptHandler();
  const roots = rootsArg();
  const seconds = Number(arg("seconds", "10"));
  const rounds = Number(arg("rounds", "3"));
  const connections = Number(arg("c", "8"));
  const batch = Number(arg("batch", "4"));
  // Node options of each side's worker, in the order of --roots ("-" for none), e.g. "-,--single-threaded-gc".
  const workerArgs = arg("worker-args", "").split(",");
  const png = renderLinePng(BENCH_LINE);
  // Each side's body, in the order of --roots ("png" unless "tensor").
  const bodyKinds = arg("bodies", "").split(",");
  // Each side's gateway environment, "K=V K2=V2" in the order of --roots ("-" for none).
  const gatewayEnvs = arg("gateway-env", "").split(",");
  const gatewayEnvOf = (i: number): Record<string, string> =>
    Object.fromEntries(
      (gatewayEnvs[i] && gatewayEnvs[i] !== "-" ? gatewayEnvs[i]!.split(" ") : []).map((kv) => {
        const at = kv.indexOf("=");
        return [kv.slice(0, at), kv.slice(at + 1)];
      }),
    );
  const bodyOf = (i: number) => (bodyKinds[i] === "tensor" ? tensorBody(png) : ocrPngBody(png));
  const headers = { authorization: `Bearer ${API_KEY}` };
  const sides: Awaited<ReturnType<typeof startSide>>[] = [];
  const restoreServices = pinProcesses(
    ["beam.smp", "redis-server", "postgres"].flatMap((comm) => pidsOf(comm)),
    OTHER_CPUS,
  );
  const pinSelf = (cpus: string) => pinProcesses([process.pid], cpus);
  try {
    for (const [i, root] of roots.entries()) {
      const args = workerArgs[i] && workerArgs[i] !== "-" ? workerArgs[i]!.split(" ") : [];
      sides.push(await startSide(root, batch, args, bodyOf(i), gatewayEnvOf(i)));
    }
    for (const side of sides) {
      const url = `${side.gateway.url}/v2/models/ocr/infer`;
      await runLoad({ url, body: side.body, headers, connections, durationSeconds: 3, cpus: OTHER_CPUS });
    }
    const workers = new CpuMeter().track("workers", () => sides.map((s) => s.worker.handle.pid));
    for (let r = 0; r < rounds; r++) {
      for (const side of sides) {
        // The last load worked off first (see sections/dedicated-cores.ts).
        await settle(workers, ["workers"]);
        const restore = pinSelf(WORKER_CPUS);
        // The faster of one batch and its lines one by one, as the worker may run either.
        const raw = await rawModel(png, Math.min(4, seconds / 2), [batch], 1, { lines: true }).finally(
          restore,
        );
        const rawLps = raw.fastest.linesPerSecond;
        const unpin = pinSelf(OTHER_CPUS);
        try {
          const pid = side.worker.handle.pid;
          const url = `${side.gateway.url}/v2/models/ocr/infer`;
          const load1 = loadavg()[0]!.toFixed(2);
          const running = runLoad({
            url,
            body: side.body,
            headers,
            connections,
            durationSeconds: seconds,
            cpus: OTHER_CPUS,
          });
          await sleep(seconds * 200);
          const first = {
            faults: minorFaults(pid),
            cpu: cpuMs(pid),
            counts: await batchCounts(side.worker.url),
            threads: threadCpuMs(pid),
          };
          await sleep(seconds * 600);
          const counts = await batchCounts(side.worker.url);
          const lines = counts.lines - first.counts.lines;
          const perLine = round((cpuMs(pid) - first.cpu) / Math.max(1, lines), 2);
          const split = threadSplit(pid, first.threads, threadCpuMs(pid), lines);
          const faults = round((minorFaults(pid) - first.faults) / Math.max(1, lines));
          const meanBatch = round(lines / Math.max(1, counts.batches - first.counts.batches), 2);
          const result = await running;
          say(
            `[${side.root}${side.args.length ? " " + side.args.join(" ") : ""}${bodyKinds[sides.indexOf(side)] === "tensor" ? " tensor body" : ""}] round ${r} c=${connections}: ${result.okPerSecond} ok/s = ${round(result.okPerSecond / rawLps, 3)} of raw ${rawLps} ` +
              `| worker ${perLine} CPU ms/line (main ${split.main}, model ${split.model}, other ${split.other}), ` +
              `mean batch ${meanBatch}, ${faults} minor page faults/line | non-200 ${result.other} | load ${load1}`,
          );
        } finally {
          unpin();
        }
      }
    }
  } finally {
    restoreServices();
    for (const side of sides) await side.install.teardown(["ocr"]);
  }
}

await main();
