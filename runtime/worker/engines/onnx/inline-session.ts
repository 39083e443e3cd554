/**
 * A second onnxruntime session of a tiny model, on the worker's main thread, for small batches.
 *
 * Why: handing a batch to the inference thread (inference-thread.ts) and taking its outputs back
 * costs two thread wakeups and a structured clone per batch; for a model such as `echo` that is
 * several times the run itself, and at moderate request rates, when batches are small, it is a
 * large share of the worker's CPU per request (bench/README.md "Fifth round"). onnxruntime-node
 * runs a session synchronously on the calling thread, so only runs that cannot hold up the event
 * loop belong here: a model file of at most INLINE_MAX_MODEL_BYTES on the CPU, without an output
 * reduction, and a batch of at most INLINE_MAX_ELEMENTS input elements. Larger batches of the
 * same model still go to its thread.
 */
import ort from "onnxruntime-node";
import type { ThreadTensor } from "./inference-thread.js";

/** Model files up to this size (the weights of a few small layers) may run on the main thread. */
export const INLINE_MAX_MODEL_BYTES = 64 * 1024;

/** Batches up to this many input elements (256 KiB of FP32) may run on the main thread. */
export const INLINE_MAX_ELEMENTS = 64 * 1024;

/** Whether a model may also get a main-thread session (pure; see the file comment). */
export function inlineEligible(model: { fileBytes: number; cpu: boolean; reduced: boolean }): boolean {
  return model.cpu && !model.reduced && model.fileBytes <= INLINE_MAX_MODEL_BYTES;
}

/** Whether a batch is small enough for the main-thread session. */
export function inlineBatch(feeds: readonly { dims: readonly number[] }[]): boolean {
  let elements = 0;
  for (const feed of feeds) elements += feed.dims.reduce((n, d) => n * d, 1);
  return elements <= INLINE_MAX_ELEMENTS;
}

/** An onnxruntime session run on the calling thread, with the inference thread's tensor shapes. */
export class InlineSession {
  private constructor(private readonly session: ort.InferenceSession) {}

  static async start(
    modelPath: string,
    options: ort.InferenceSession.SessionOptions,
  ): Promise<InlineSession> {
    return new InlineSession(await ort.InferenceSession.create(modelPath, options));
  }

  async run(feeds: readonly ThreadTensor[]): Promise<ThreadTensor[]> {
    const inputs: Record<string, ort.Tensor> = {};
    for (const f of feeds) {
      inputs[f.name] = new ort.Tensor(f.type as ort.Tensor.Type, f.data as ort.Tensor.DataType, f.dims);
    }
    const results = await this.session.run(inputs);
    return this.session.outputNames.map((name) => {
      const t = results[name]!;
      return { name, type: t.type, dims: [...t.dims], data: t.data as ThreadTensor["data"] };
    });
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
