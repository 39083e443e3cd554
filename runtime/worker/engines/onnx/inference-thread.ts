/**
 * Runs an onnxruntime session on a worker thread.
 *
 * Why: onnxruntime-node's `session.run` executes synchronously on the calling thread (its promise
 * only defers the start with setImmediate), so on the main thread a 15-200 ms batch would freeze
 * the event loop: no deliveries, publisher confirms, acks, heartbeats or health probes meanwhile.
 * On its own thread the model computes batch N while the main thread decodes batch N+1 and
 * publishes batch N-1.
 *
 * The thread's code is session-thread.ts.
 */
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { InferenceSession } from "onnxruntime-node";

/** A tensor as it crosses the thread boundary (onnxruntime type names). */
export interface ThreadTensor {
  name: string;
  type: string;
  dims: readonly number[];
  data: ArrayBufferView | readonly string[];
}

/** What the thread reports once the session is loaded. */
export interface ThreadSessionInfo {
  inputMetadata: InferenceSession.ValueMetadata[];
  outputMetadata: InferenceSession.ValueMetadata[];
  outputNames: string[];
}

/**
 * What the thread does to the outputs before posting them back. `ctc-best-path`: every FP32
 * [batch, timesteps, classes] output becomes its best path [batch, timesteps, 2] (class,
 * probability; tasks/ocr/ctc-decode.ts), which is all greedy CTC decoding reads.
 */
export type OutputReduction = "ctc-best-path";

/** What the thread is started with. */
export interface ThreadWorkerData {
  modelPath: string;
  options: InferenceSession.SessionOptions;
  /** When set, a second session of the model with these options runs the `batched` runs. */
  batchedOptions?: InferenceSession.SessionOptions;
}

/** Messages to the thread. */
export type ThreadRequest =
  | { type: "run"; id: number; feeds: readonly ThreadTensor[]; reduce?: OutputReduction; batched?: boolean }
  | { type: "release" };

/** Messages from the thread. */
export type ThreadReply =
  | ({ type: "loaded" } & ThreadSessionInfo)
  | { type: "failed"; error: string }
  | { type: "result"; id: number; outputs?: ThreadTensor[]; spare?: ArrayBuffer[]; error?: string }
  | { type: "released" };

/**
 * Starts the thread on session-thread.js next to this file once compiled. From TypeScript sources
 * (tests, `make run`) a worker thread inherits no TypeScript loader, so a one-line bootstrap
 * registers tsx in the thread before importing session-thread.ts.
 */
function startThread(workerData: ThreadWorkerData): Worker {
  if (!import.meta.url.endsWith(".ts")) {
    return new Worker(new URL("./session-thread.js", import.meta.url), { workerData });
  }
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx/esm/api")).href;
  const thread = new URL("./session-thread.ts", import.meta.url).href;
  const bootstrap = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(thread)}); });`;
  return new Worker(bootstrap, { eval: true, workerData });
}

/** An onnxruntime session living on its own thread; runs are queued by the caller (one at a time). */
export class InferenceThread {
  private readonly pending = new Map<
    number,
    { resolve: (o: ThreadTensor[]) => void; reject: (e: Error) => void }
  >();
  private nextId = 0;
  /** Feed buffers handed back by finished runs, newest last (see takeSpare). */
  private readonly spare: ArrayBuffer[] = [];
  private broken: Error | undefined;
  private released: (() => void) | undefined;

  private constructor(
    private readonly worker: Worker,
    readonly info: ThreadSessionInfo,
  ) {
    worker.on("message", (reply: ThreadReply) => {
      if (reply.type === "released") return this.released?.();
      if (reply.type !== "result") return;
      for (const buffer of reply.spare ?? []) this.keepSpare(buffer);
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.error !== undefined) waiter?.reject(new Error(reply.error));
      else waiter?.resolve(reply.outputs ?? []);
    });
    const fail = (error: Error) => {
      this.broken ??= error;
      for (const waiter of this.pending.values()) waiter.reject(error);
      this.pending.clear();
      this.released?.();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`inference thread exited (code ${code})`)));
  }

  /** Starts a thread and loads `modelPath` with `options` (and `batchedOptions`, see ThreadWorkerData) in it. */
  static start(
    modelPath: string,
    options: InferenceSession.SessionOptions,
    batchedOptions?: InferenceSession.SessionOptions,
  ): Promise<InferenceThread> {
    const worker = startThread({ modelPath, options, ...(batchedOptions ? { batchedOptions } : {}) });
    return new Promise((resolve, reject) => {
      const onExit = (code: number) =>
        reject(new Error(`inference thread exited (code ${code}) while loading`));
      worker.once("error", reject);
      worker.once("exit", onExit);
      worker.once("message", (reply: ThreadReply) => {
        worker.off("error", reject);
        worker.off("exit", onExit);
        if (reply.type === "loaded") resolve(new InferenceThread(worker, reply));
        else {
          void worker.terminate();
          reject(
            new Error(reply.type === "failed" ? reply.error : `unexpected ${reply.type} from the thread`),
          );
        }
      });
    });
  }

  /** Why the thread stopped working (it died or could not run at all); undefined while it is fine. */
  get failure(): Error | undefined {
    return this.broken;
  }

  /**
   * Runs the session on `feeds`; outputs come back in the model's order. The feeds are copied to the
   * thread, unless `giveAway`: then every numeric feed that owns its whole ArrayBuffer is moved
   * (transferred, no copy) and is unusable here afterwards. `reduce` shrinks the outputs in the thread.
   * `batched` (a batch of several requests) runs in the second session when the thread has one.
   */
  run(
    feeds: readonly ThreadTensor[],
    options: { giveAway?: boolean; reduce?: OutputReduction; batched?: boolean } = {},
  ): Promise<ThreadTensor[]> {
    const { giveAway = false, reduce, batched } = options;
    if (this.broken) return Promise.reject(this.broken);
    const id = this.nextId++;
    const transfer = giveAway ? feeds.map((f) => ownBuffer(f.data)).filter((b) => b !== undefined) : [];
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ type: "run", id, feeds, reduce, batched } satisfies ThreadRequest, transfer);
    });
  }

  /**
   * A buffer of exactly `byteLength` bytes that a finished run handed back (its feeds' memory), or
   * undefined. Not zeroed. Reusing it spares a fresh 0.7 MB allocation (and its page faults and
   * collection) for every OCR batch of 4.
   */
  takeSpare(byteLength: number): ArrayBuffer | undefined {
    const i = this.spare.findIndex((b) => b.byteLength === byteLength);
    return i < 0 ? undefined : this.spare.splice(i, 1)[0];
  }

  private keepSpare(buffer: ArrayBuffer): void {
    this.spare.push(buffer);
    if (this.spare.length > MAX_SPARE) this.spare.shift();
  }

  /** Releases the session and stops the thread. */
  async release(): Promise<void> {
    if (!this.broken) {
      const done = new Promise<void>((resolve) => (this.released = resolve));
      this.worker.postMessage({ type: "release" } satisfies ThreadRequest);
      await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
    }
    await this.worker.terminate();
  }
}

/** Spare feed buffers kept at most: a few batch shapes (sizes and widths) in turn. */
const MAX_SPARE = 4;

/** The ArrayBuffer of a typed array that spans all of it (not a view into a shared pool), else undefined. */
export function ownBuffer(data: ThreadTensor["data"]): ArrayBuffer | undefined {
  if (!ArrayBuffer.isView(data) || !(data.buffer instanceof ArrayBuffer)) return undefined;
  return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data.buffer : undefined;
}

/** Input elements of a run (what its time is divided by, so runs of other sizes compare). */
export const elementsOf = (feeds: readonly ThreadTensor[]) =>
  feeds.reduce((n, f) => n + f.dims.reduce((a, d) => a * d, 1), 0);
