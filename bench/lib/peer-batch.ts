/**
 * The OCR worker's batch size in section 6 (vs KServe), and why. A user serving this model would
 * configure it from the sample (samples/inference-model-ocr-cpu.yaml, `maxBatchSize`), not from a
 * benchmark's best batch of the moment; and the worker's batcher only forms a batch when requests
 * wait, so a lone request runs alone whatever the size. Section 1's choice (its best batch in
 * onnxruntime's default session) stays available as `--peer-batch=raw`, a fixed size as `=N`.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import yaml from "js-yaml";
import { repoRoot } from "./env.js";

export const OCR_SAMPLE = "samples/inference-model-ocr-cpu.yaml";

/** `spec.batching.maxBatchSize` of the CPU OCR sample. */
export function sampleMaxBatchSize(path = join(repoRoot, OCR_SAMPLE)): number {
  const doc = yaml.load(readFileSync(path, "utf8")) as {
    spec?: { batching?: { maxBatchSize?: unknown } };
  };
  const size = doc?.spec?.batching?.maxBatchSize;
  if (typeof size !== "number" || !Number.isInteger(size) || size < 1)
    throw new Error(`${path}: spec.batching.maxBatchSize should be a positive integer, got ${String(size)}`);
  return size;
}

export interface PeerBatch {
  size: number;
  why: string;
}

/**
 * Picks the batch size from `--peer-batch` (`sample`, the default; `raw`; or a number), given the
 * sample's size and section 1's best batch (undefined when section 1 did not run).
 */
export function choosePeerBatch(
  flag: string,
  sample: number,
  raw?: { batch: number; what: string },
): PeerBatch {
  if (flag === "sample")
    return {
      size: sample,
      why:
        `the sample's maxBatchSize (${OCR_SAMPLE}), as a user configures it; batches form only ` +
        `when requests wait` +
        (raw ? `; section 1's best: batch ${raw.batch} ${raw.what}` : ""),
    };
  if (flag === "raw") {
    if (!raw) return { size: sample, why: `--peer-batch=raw without section 1: the sample's maxBatchSize` };
    return { size: raw.batch, why: `--peer-batch=raw: section 1's best, batch ${raw.batch} ${raw.what}` };
  }
  const size = Number(flag);
  if (!Number.isInteger(size) || size < 1)
    throw new Error(`--peer-batch=${flag}: use sample, raw or a positive integer`);
  return { size, why: `--peer-batch=${size}` };
}
