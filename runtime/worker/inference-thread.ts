/**
 * Runs an onnxruntime session on a worker thread.
 *
 * Why: onnxruntime-node's `session.run` executes synchronously on the calling thread (its promise
 * only defers the start with setImmediate), so on the main thread a 15-200 ms batch would freeze
 * the event loop: no deliveries, publisher confirms, acks, heartbeats or health probes meanwhile.
 * On its own thread the model computes batch N while the main thread decodes batch N+1 and
 * publishes batch N-1.
 *
 * The thread's code is an inline CommonJS script (`eval: true`) that loads onnxruntime-node from a
 * resolved path, so it works the same from TypeScript sources (tests, tsx) and from a bundle.
 */
import { createRequire } from "node:module";
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

const THREAD_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const ort = require(workerData.ortPath);
const message = (e) => (e && e.message) || String(e);
const plain = (metadata) => metadata.map((m) => ({ ...m, shape: m.shape ? [...m.shape] : undefined }));
ort.InferenceSession.create(workerData.modelPath, workerData.options).then(
  (session) => {
    parentPort.postMessage({
      type: "loaded",
      inputMetadata: plain(session.inputMetadata),
      outputMetadata: plain(session.outputMetadata),
      outputNames: [...session.outputNames],
    });
    parentPort.on("message", async (msg) => {
      if (msg.type === "release") {
        await session.release();
        parentPort.postMessage({ type: "released" });
        return;
      }
      try {
        const feeds = {};
        for (const f of msg.feeds) feeds[f.name] = new ort.Tensor(f.type, f.data, f.dims);
        const results = await session.run(feeds);
        const outputs = session.outputNames.map((name) => {
          const t = results[name];
          return { name, type: t.type, dims: [...t.dims], data: t.data };
        });
        const transfer = outputs.map((o) => o.data.buffer).filter((b) => b instanceof ArrayBuffer);
        try {
          parentPort.postMessage({ type: "result", id: msg.id, outputs }, transfer);
        } catch {
          parentPort.postMessage({ type: "result", id: msg.id, outputs }); // not transferable: copy
        }
      } catch (e) {
        parentPort.postMessage({ type: "result", id: msg.id, error: message(e) });
      }
    });
  },
  (e) => parentPort.postMessage({ type: "failed", error: message(e) }),
);
`;

type Reply =
  | ({ type: "loaded" } & ThreadSessionInfo)
  | { type: "failed"; error: string }
  | { type: "result"; id: number; outputs?: ThreadTensor[]; error?: string }
  | { type: "released" };

/** An onnxruntime session living on its own thread; runs are queued by the caller (one at a time). */
export class InferenceThread {
  private readonly pending = new Map<
    number,
    { resolve: (o: ThreadTensor[]) => void; reject: (e: Error) => void }
  >();
  private nextId = 0;
  private broken: Error | undefined;
  private released: (() => void) | undefined;

  private constructor(
    private readonly worker: Worker,
    readonly info: ThreadSessionInfo,
  ) {
    worker.on("message", (reply: Reply) => {
      if (reply.type === "released") return this.released?.();
      if (reply.type !== "result") return;
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

  /** Starts a thread and loads `modelPath` with `options` in it. */
  static start(modelPath: string, options: InferenceSession.SessionOptions): Promise<InferenceThread> {
    const ortPath = createRequire(import.meta.url).resolve("onnxruntime-node");
    const worker = new Worker(THREAD_SOURCE, { eval: true, workerData: { ortPath, modelPath, options } });
    return new Promise((resolve, reject) => {
      const onExit = (code: number) =>
        reject(new Error(`inference thread exited (code ${code}) while loading`));
      worker.once("error", reject);
      worker.once("exit", onExit);
      worker.once("message", (reply: Reply) => {
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

  /** Runs the session on `feeds` (copied to the thread); outputs come back in the model's order. */
  run(feeds: readonly ThreadTensor[]): Promise<ThreadTensor[]> {
    if (this.broken) return Promise.reject(this.broken);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ type: "run", id, feeds });
    });
  }

  /** Releases the session and stops the thread. */
  async release(): Promise<void> {
    if (!this.broken) {
      const done = new Promise<void>((resolve) => (this.released = resolve));
      this.worker.postMessage({ type: "release" });
      await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
    }
    await this.worker.terminate();
  }
}
