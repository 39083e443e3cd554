/**
 * The gateway's CPU for reading section 6's OIP JSON tensor body (input `x`, FP32 [1,3,48,320],
 * 131 KB), in process, each way interleaved with the others so all meet the same moment of a shared
 * machine: JSON.parse of the whole body, as the gateway did before, against the long number arrays
 * read from the bytes (runtime/gateway/oip/number-runs.ts), each followed by the same validation
 * and encoding (parseInferRequest with the OCR model's input check). Also times, alone, work the
 * gateway no longer does per request: the cache key's base64 input for a model without the cache,
 * and one ApiError (a stack trace) for the signature variant that does not fit.
 *
 *   npx tsx bench/oip-parse.ts [--rounds=400] [--gap-ms=10] [--floats=true]
 *
 * --gap-ms idles between calls, as the gateway does at one connection. CPU is process.cpuUsage
 * (every thread of the process, GC included). Measurements only; nothing asserts.
 */
import sjson from "secure-json-parse";
import { renderLinePng } from "../test/fixtures/text-line.js";
import { parseRuntimeConfig } from "../runtime/shared/contracts/index.js";
import { taskSignature } from "../runtime/shared/models/task-signature.js";
import { ApiError } from "../runtime/gateway/errors.js";
import { parseInferRequest } from "../runtime/gateway/infer-request.js";
import { modelInputCheck } from "../runtime/gateway/input-contracts.js";
import { liftNumberRuns, restoreNumberRuns } from "../runtime/gateway/oip/number-runs.js";
import { oipCacheInput } from "../runtime/gateway/result-cache.js";
import { BENCH_LINE, say, sleep } from "./lib/env.js";
import { round } from "./lib/stats.js";
import { ocrModel } from "./sections/end-to-end.js";
import { tensorBody } from "./sections/kserve.js";
import { arg } from "./lib/compare-sides.js";

const rounds = Number(arg("rounds", "400"));
const gapMs = Number(arg("gap-ms", "10"));
const body = tensorBody(renderLinePng(BENCH_LINE));
// --floats: the same tensor as a numpy client writes random FP32 values (17 significant digits).
if (arg("floats", "") === "true") {
  const input = body.inputs[0]!;
  input.data = Array.from(new Float32Array(input.data.length).map(() => Math.random() * 2 - 1));
}
const raw = Buffer.from(JSON.stringify(body));
const config = parseRuntimeConfig({ prefix: "bench", models: [ocrModel(4)], tenants: [] });
const check = modelInputCheck(taskSignature(config.models[0]!));
// fastify's JSON parser options in the gateway (oip/body-parsers.ts).
const secure = { protoAction: "error", constructorAction: "error" } as const;
const wires = parseInferRequest(JSON.parse(raw.toString("utf8")), check).inputs.map((i) => i.wire);

const ways: Record<string, () => unknown> = {
  "JSON.parse + parseInferRequest": () => parseInferRequest(sjson.parse(raw.toString("utf8"), secure), check),
  "number runs + JSON.parse + parseInferRequest": () => {
    // As the gateway does (oip/body-parsers.ts): the whole body to JSON.parse when nothing is lifted.
    const lifted = liftNumberRuns(raw);
    if (!lifted) return parseInferRequest(sjson.parse(raw.toString("utf8"), secure), check);
    return parseInferRequest(restoreNumberRuns(sjson.parse(lifted.text, secure), lifted), check);
  },
  "cache key input (base64 of x)": () => oipCacheInput(wires, {}),
  "one ApiError": () => new ApiError("unknown_input", "input x is not an input of ocr; expected image"),
};

const cpu = new Map<string, number[]>();
const wall = new Map<string, number[]>();
for (let r = 0; r < rounds; r++) {
  for (const [name, run] of Object.entries(ways)) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    run();
    const t1 = performance.now();
    const c1 = process.cpuUsage(c0);
    // The first tenth warms up (tiering, caches).
    if (r >= rounds / 10) {
      cpu.set(name, [...(cpu.get(name) ?? []), (c1.user + c1.system) / 1000]);
      wall.set(name, [...(wall.get(name) ?? []), t1 - t0]);
    }
    if (gapMs > 0) await sleep(gapMs);
  }
}
const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
say(`body ${raw.length} bytes, ${rounds} rounds, gap ${gapMs} ms`);
for (const name of Object.keys(ways)) {
  say(
    `${name}: wall median ${round(median(wall.get(name)!), 3)} ms, CPU mean ${round(mean(cpu.get(name)!), 3)} ms`,
  );
}
