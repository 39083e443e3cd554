/**
 * A batch's lines run side by side: one single-thread session of the model per thread of the
 * worker, each on its own inference thread (inference-thread.ts), every row of a batch a run of
 * its own, the outputs stacked back in order.
 *
 * Why: on some CPUs the model costs more per line in a batch than alone, and one session's threads
 * share a run less well than two runs share the cores. On the AVX-512 Xeon of the eleventh round,
 * the OCR model ran 99.5 lines/s at 19.9 CPU ms per line as two single-thread sessions side by
 * side, against 57.9 lines/s (29.5 ms) as batches of 4 on two threads and 79.8 (24.0 ms) as single
 * lines on two spinning threads (bench/README.md, "Eleventh round"). Whether a batch runs this way
 * is chosen per batch size from measured run times (faster-choice.ts, model-runner.ts). A model on
 * one thread runs its lines one after another on its own thread (LinePool.over): on that Xeon, one
 * core ran 47.5 lines/s one by one against 33.8 as batches of 4, and the worker still shares its
 * per-task work (acks, publishes, cancellation checks) over the batch.
 */
import type { InferenceSession } from "onnxruntime-node";
import { InferenceThread, type OutputReduction, type ThreadTensor } from "./inference-thread.js";

export class LinePool {
  private readonly busy: number[];

  private constructor(
    private readonly threads: readonly InferenceThread[],
    private readonly owned: boolean,
  ) {
    this.busy = threads.map(() => 0);
  }

  /**
   * Lines run one after another on `thread`, which stays its owner's (release() leaves it): a model
   * on one thread, where a batch of several costs more per line than its lines one by one and no
   * second session is worth its memory.
   */
  static over(thread: InferenceThread): LinePool {
    return new LinePool([thread], false);
  }

  /** Starts `size` threads, each loading `modelPath` with `options` (meant for one intra-op thread). */
  static async start(
    modelPath: string,
    options: InferenceSession.SessionOptions,
    size: number,
  ): Promise<LinePool> {
    const started = await Promise.allSettled(
      Array.from({ length: size }, () => InferenceThread.start(modelPath, options)),
    );
    const threads = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (failed) {
      await Promise.all(threads.map((t) => t.release()));
      throw failed.reason;
    }
    return new LinePool(threads, true);
  }

  /** How many lines run at once. */
  get size(): number {
    return this.threads.length;
  }

  /**
   * Runs each line (the feeds of one row) as a run of its own, on the least busy thread; the
   * outputs come back in line order. Each line's feeds move to its thread (their memory must be
   * their own: see splitRows).
   */
  run(lines: readonly ThreadTensor[][], reduce?: OutputReduction): Promise<ThreadTensor[][]> {
    return Promise.all(lines.map((line) => this.runLine(line, reduce)));
  }

  private async runLine(line: ThreadTensor[], reduce: OutputReduction | undefined): Promise<ThreadTensor[]> {
    const i = this.busy.indexOf(Math.min(...this.busy));
    this.busy[i]!++;
    try {
      return await this.threads[i]!.run(line, { giveAway: true, reduce });
    } finally {
      this.busy[i]!--;
    }
  }

  async release(): Promise<void> {
    if (this.owned) await Promise.all(this.threads.map((t) => t.release()));
  }
}
