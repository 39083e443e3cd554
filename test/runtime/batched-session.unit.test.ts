// A batching model's inference thread runs batches of several in a second session of the model
// whose threads do not spin (model-runner.ts, batchedSessionOptions; opened at the first batch),
// one line in the first one, or in either once both are open (faster-choice.ts). A batch may also
// run as its lines side by side on single-thread sessions (line-pool.ts). All must answer alike:
// each row of a batch equals that line alone, and a line is the same in either session.
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { logger } from "../../runtime/shared/logger.js";
import { modelConfigSchema } from "../../runtime/shared/contracts/index.js";
import type { DecodedTensor } from "../../runtime/shared/tensors.js";
import { concatRows } from "../../runtime/worker/batch-tensors.js";
import { loadModel } from "../../runtime/worker/engines/onnx/model-runner.js";
import { imageToTensor } from "../../runtime/worker/processors/image-to-tensor.js";
import { OCR_URI, renderLinePng, tinyModelUris } from "./helpers/worker-fixtures.js";

const context = { dictionary: () => [], settings: {}, parameters: {} };

const lineTensor = (text: string): DecodedTensor => {
  const [x] = imageToTensor.run(
    [{ name: "image", datatype: "BYTES", shape: [1], data: [new Uint8Array(renderLinePng(text))] }],
    context,
  );
  return { ...x!, name: "x" };
};

/** The OCR recognition model on two threads, batching up to `maxBatchSize` (so with a batched session). */
const ocrConfig = (maxBatchSize: number) =>
  modelConfigSchema.parse({
    name: "ocr",
    uri: OCR_URI,
    task: "ocr-recognition",
    batching: { maxBatchSize },
    threads: 2,
  });

describe("the batched session of a model's thread", () => {
  it("answers single lines alike once they may run in either session (faster-choice.ts)", async () => {
    const config = ocrConfig(2);
    // The default warm-up (1, then the largest batch) opens the second session.
    const runner = await loadModel(config, { log: logger("batched-session-test") });
    try {
      const line = lineTensor("Order 7731 shipped");
      // The first four single lines go two to each session (FasterChoice times both first).
      const answers: DecodedTensor[] = [];
      for (let i = 0; i < 6; i++) answers.push((await runner.run([line]))[0]!);
      const classes = (t: DecodedTensor) => Array.from(t.data as Float32Array).filter((_, i) => i % 2 === 0);
      for (const answer of answers.slice(1)) expect(classes(answer)).toEqual(classes(answers[0]!));
    } finally {
      await runner.release();
    }
  });

  // Two threads: the lines side by side on a pool of two single-thread sessions; one thread: the
  // lines one after another on the model's own thread.
  it.each([2, 1])(
    "answers each row of a batch as the line alone does, as one batch and as its lines (%i threads)",
    async (threads) => {
      const config = { ...ocrConfig(4), threads };
      const logged: Record<string, unknown>[] = [];
      const log = pino({ level: "info" }, { write: (line: string) => void logged.push(JSON.parse(line)) });
      const runner = await loadModel(config, { log, warmupBatchSizes: [1] });
      try {
        expect(logged.find((l) => l.msg === "model loaded and warmed up")).toMatchObject({
          linePool: threads,
        });
        // Three rows: one pool thread runs two of them.
        const lines = ["Order 7731 shipped", "Invoice 42", "Turnpike"].map(lineTensor);
        const alone = await Promise.all(lines.map((line) => runner.run([line])));
        // Runs 1-2 of a batch size go to one batch, 3-4 to the lines (FasterChoice times both), then the faster.
        for (let run = 0; run < 6; run++) {
          const [batched] = await runner.run([concatRows(lines)]);
          // The best path: [rows, timesteps, 2] (class, probability).
          expect(batched!.shape.slice(0, 1)).toEqual([3]);
          const rowLength = (batched!.data as Float32Array).length / 3;
          alone.forEach(([single], row) => {
            const want = Array.from(single!.data as Float32Array);
            const got = Array.from(
              (batched!.data as Float32Array).subarray(row * rowLength, (row + 1) * rowLength),
            );
            expect(got.filter((_, i) => i % 2 === 0)).toEqual(want.filter((_, i) => i % 2 === 0));
            got.forEach((p, i) => i % 2 && expect(p).toBeCloseTo(want[i]!, 4));
          });
        }
        // Both ways were timed, and the faster one was chosen.
        const chosen = logged.find((l) => l.rows === 3 && typeof l.way === "string");
        expect(chosen).toMatchObject({
          msPerElement: { batch: expect.any(Number), lines: expect.any(Number) },
        });
      } finally {
        await runner.release();
      }
    },
  );

  it("gives a tiny model with a main-thread session no line pool", async () => {
    const logged: Record<string, unknown>[] = [];
    const log = pino({ level: "info" }, { write: (line: string) => void logged.push(JSON.parse(line)) });
    const config = modelConfigSchema.parse({
      name: "echo",
      uri: tinyModelUris().echo,
      inputs: [{ name: "x", datatype: "FP32", shape: [-1, 4] }],
      outputs: [{ name: "y", datatype: "FP32", shape: [-1, 4] }],
      batching: { maxBatchSize: 32 },
      threads: 2,
    });
    const runner = await loadModel(config, { log });
    await runner.release();
    expect(logged.find((l) => l.msg === "model loaded and warmed up")).toMatchObject({
      mainThread: true,
      linePool: 0,
    });
  });
});
