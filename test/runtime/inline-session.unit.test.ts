// A tiny model's small batches run on the worker's main thread, larger ones on its inference
// thread: which models and batches qualify, and that both paths give the same answer.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { modelConfigSchema } from "../../runtime/shared/contracts/index.js";
import { logger } from "../../runtime/shared/logger.js";
import type { DecodedTensor } from "../../runtime/shared/tensors.js";
import {
  INLINE_MAX_ELEMENTS,
  INLINE_MAX_MODEL_BYTES,
  inlineBatch,
  inlineEligible,
} from "../../runtime/worker/engines/onnx/inline-session.js";
import { loadModel } from "../../runtime/worker/engines/onnx/model-runner.js";
import { writeTinyModels } from "../fixtures/tiny-models.js";

describe("main-thread runs of tiny models", () => {
  it("qualify only small CPU models without an output reduction", () => {
    const tiny = { fileBytes: 200, cpu: true, reduced: false };
    expect(inlineEligible(tiny)).toBe(true);
    expect(inlineEligible({ ...tiny, fileBytes: INLINE_MAX_MODEL_BYTES + 1 })).toBe(false);
    expect(inlineEligible({ ...tiny, cpu: false })).toBe(false);
    expect(inlineEligible({ ...tiny, reduced: true })).toBe(false);
  });

  it("take batches up to INLINE_MAX_ELEMENTS input elements", () => {
    expect(inlineBatch([{ dims: [32, 4] }, { dims: [32] }])).toBe(true);
    expect(inlineBatch([{ dims: [1, INLINE_MAX_ELEMENTS] }])).toBe(true);
    expect(inlineBatch([{ dims: [2, INLINE_MAX_ELEMENTS / 2] }, { dims: [1] }])).toBe(false);
  });

  it("answer a small and a large batch of the echo model alike, and stop with the thread", async () => {
    const paths = writeTinyModels(mkdtempSync(join(tmpdir(), "turnpike-inline-")));
    const config = modelConfigSchema.parse({ name: "echo", uri: `file://${paths.echo}` });
    const runner = await loadModel(config, { log: logger("inline-test") });
    const feed = (rows: number, n: number): DecodedTensor => ({
      name: "x",
      datatype: "FP32",
      shape: [rows, n],
      data: Float32Array.from({ length: rows * n }, (_, i) => i % 251),
    });
    for (const x of [feed(2, 4), feed(2, INLINE_MAX_ELEMENTS)]) {
      const [y] = await runner.run([x]);
      expect([y!.name, y!.shape, Array.from(y!.data as Float32Array)]).toEqual([
        "y",
        x.shape,
        Array.from(x.data as Float32Array),
      ]);
    }
    await runner.release();
    await expect(runner.run([feed(1, 4)])).rejects.toThrow(/inference thread exited/);
  });
});
