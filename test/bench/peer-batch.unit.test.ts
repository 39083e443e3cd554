import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { choosePeerBatch, OCR_SAMPLE, sampleMaxBatchSize } from "../../bench/lib/peer-batch.js";

describe("section 6's OCR batch size", () => {
  it("reads maxBatchSize from the CPU OCR sample a user would apply", () => {
    // The sample says 4 today; what matters is that the bench reads the file, not a copy of it.
    expect(sampleMaxBatchSize()).toBe(4);
  });

  it("refuses a sample without a usable maxBatchSize, naming the file", () => {
    const path = join(mkdtempSync(join(tmpdir(), "peer-batch-")), "model.yaml");
    writeFileSync(path, "spec:\n  batching:\n    maxBatchSize: many\n");
    expect(() => sampleMaxBatchSize(path)).toThrow(/model\.yaml: spec\.batching\.maxBatchSize/);
  });

  it("uses the sample's size by default, and says section 1's best beside it", () => {
    const choice = choosePeerBatch("sample", 4, { batch: 1, what: "(default session)" });
    expect(choice.size).toBe(4);
    expect(choice.why).toContain(OCR_SAMPLE);
    expect(choice.why).toContain("section 1's best: batch 1 (default session)");
  });

  it("keeps section 1's best as --peer-batch=raw, and falls back to the sample without section 1", () => {
    expect(choosePeerBatch("raw", 4, { batch: 2, what: "x" }).size).toBe(2);
    const fallback = choosePeerBatch("raw", 4);
    expect(fallback.size).toBe(4);
    expect(fallback.why).toMatch(/without section 1/);
  });

  it("takes a fixed size and refuses anything else", () => {
    expect(choosePeerBatch("8", 4).size).toBe(8);
    expect(() => choosePeerBatch("0", 4)).toThrow(/--peer-batch=0: use sample, raw or a positive integer/);
    expect(() => choosePeerBatch("best", 4)).toThrow(/--peer-batch=best/);
  });
});
