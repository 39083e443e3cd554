/**
 * The code of an onnxruntime worker thread (started by inference-thread.ts): loads one session,
 * then runs the feeds it is sent, one message at a time, and posts the outputs back. With
 * `batchedOptions`, runs marked `batched` go to a second session, opened at the first such run
 * (the worker's warm-up at its largest batch), so a model that never batches never loads it. Once
 * it is open, single-line runs go to whichever of the two is faster on this host now (faster-choice.ts).
 */
import { performance } from "node:perf_hooks";
import { parentPort, workerData } from "node:worker_threads";
import ort from "onnxruntime-node";
import { ctcBestPath, isSoftmax } from "../../tasks/ocr/ctc-decode.js";
import {
  elementsOf,
  ownBuffer,
  type OutputReduction,
  type ThreadReply,
  type ThreadRequest,
  type ThreadTensor,
  type ThreadWorkerData,
} from "./inference-thread.js";
import { FasterChoice } from "./faster-choice.js";

const port = parentPort!;
const { modelPath, options, batchedOptions } = workerData as ThreadWorkerData;

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));
const reply = (value: ThreadReply, transfer?: ArrayBuffer[]) => port.postMessage(value, transfer);

/** Metadata as plain objects (onnxruntime's shapes may be frozen arrays that do not clone). */
const plain = (metadata: readonly ort.InferenceSession.ValueMetadata[]) =>
  metadata.map((m) => ({ ...m, ...(m.isTensor ? { shape: [...m.shape] } : {}) }));

/** Whether the reduced output is a softmax, from the first one reduced (the warm-up's); see isSoftmax. */
let softmax: boolean | undefined;

async function run(
  session: ort.InferenceSession,
  feeds: readonly ThreadTensor[],
  reduce: OutputReduction | undefined,
): Promise<ThreadTensor[]> {
  const inputs: Record<string, ort.Tensor> = {};
  for (const f of feeds) {
    inputs[f.name] = new ort.Tensor(f.type as ort.Tensor.Type, f.data as ort.Tensor.DataType, f.dims);
  }
  const results = await session.run(inputs);
  return session.outputNames.map((name) => {
    const t = results[name]!;
    if (reduce === "ctc-best-path" && t.type === "float32" && t.dims.length === 3) {
      softmax ??= isSoftmax(t.data as Float32Array, t.dims[2]!);
      return {
        name,
        type: t.type,
        dims: [t.dims[0]!, t.dims[1]!, 2],
        data: ctcBestPath(t.data as Float32Array, t.dims, softmax),
      };
    }
    return { name, type: t.type, dims: [...t.dims], data: t.data as ThreadTensor["data"] };
  });
}

function serve(session: ort.InferenceSession): void {
  let batched: Promise<ort.InferenceSession> | undefined;
  const single = new FasterChoice(["spinning", "quiet"] as const);
  reply({
    type: "loaded",
    inputMetadata: plain(session.inputMetadata),
    outputMetadata: plain(session.outputMetadata),
    outputNames: [...session.outputNames],
  });
  port.on("message", async (msg: ThreadRequest) => {
    if (msg.type === "release") {
      await session.release();
      const second = await batched;
      if (second && second !== session) await second.release();
      reply({ type: "released" });
      return;
    }
    try {
      // Should the second session not open, batches run in the first one, as without it.
      if (msg.batched && batchedOptions)
        batched ??= ort.InferenceSession.create(modelPath, batchedOptions).catch(() => session);
      const second = batched ? await batched : undefined;
      let outputs: ThreadTensor[];
      if (msg.batched || !second || second === session) {
        outputs = await run(msg.batched && second ? second : session, msg.feeds, msg.reduce);
      } else {
        // One line, and both sessions open: the one that is faster now (see faster-choice.ts).
        const which = single.next();
        const started = performance.now();
        outputs = await run(which === "quiet" ? second : session, msg.feeds, msg.reduce);
        single.record(which, performance.now() - started, elementsOf(msg.feeds));
      }
      const transfer = outputs
        .map((o) => (ArrayBuffer.isView(o.data) ? o.data.buffer : undefined))
        .filter((b): b is ArrayBuffer => b instanceof ArrayBuffer);
      // The feeds' memory goes back for the next batch (onnxruntime is done with it).
      const spare = msg.feeds.map((f) => ownBuffer(f.data)).filter((b) => b !== undefined);
      try {
        reply({ type: "result", id: msg.id, outputs, spare }, [...transfer, ...spare]);
      } catch {
        reply({ type: "result", id: msg.id, outputs }); // not transferable: copy
      }
    } catch (error) {
      reply({ type: "result", id: msg.id, error: message(error) });
    }
  });
}

ort.InferenceSession.create(modelPath, options).then(serve, (error: unknown) =>
  reply({ type: "failed", error: message(error) }),
);
