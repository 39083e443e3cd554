// OCR lines resized only when their batch is stacked must give exactly the tensor the eager path gives.
import { describe, expect, it } from "vitest";
import { concatRows } from "../../runtime/worker/batch-tensors.js";
import { deferredLines } from "../../runtime/worker/tasks/ocr/deferred-lines.js";
import { recognitionBatch, type PixelImage } from "../../runtime/shared/images/ocr-preprocess.js";

/** A deterministic image of `channels` channels (gray, RGB or RGBA). */
function image(width: number, height: number, channels: 1 | 3 | 4, seed: number): PixelImage {
  const data = new Uint8Array(width * height * channels);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + seed * 17) % 256;
  return { width, height, data, channels };
}

describe("deferred OCR lines", () => {
  const short = image(120, 32, 1, 1); // 180 wide at height 48: padded to 320
  const wide = image(600, 40, 3, 2); // 720 wide at height 48
  const rgba = image(200, 48, 4, 3);

  it("reads like the eager tensor of the same line", () => {
    const deferred = deferredLines("x", [wide]);
    const eager = recognitionBatch([wide], { targetWidth: 720 });
    expect(deferred.shape).toEqual(eager.dims);
    expect(deferred.data).toEqual(eager.data);
  });

  it("writes each line straight into a stacked batch, padded to the widest", () => {
    const parts = [deferredLines("x", [short]), deferredLines("x", [wide, rgba])];
    const stacked = concatRows(parts, 3);
    const eager = recognitionBatch([short, wide, rgba], { targetWidth: 720 });
    expect(stacked.shape).toEqual(eager.dims);
    expect(stacked.data).toEqual(eager.data);
  });

  it("reads a gray line like the same line as RGB (the gray path samples once, copies twice)", () => {
    const data = new Uint8Array(short.data.length * 3);
    short.data.forEach((v, i) => data.fill(v, i * 3, i * 3 + 3));
    const rgb: PixelImage = { ...short, channels: 3, data };
    expect(recognitionBatch([short, short]).data).toEqual(recognitionBatch([rgb, rgb]).data);
  });

  it("samples each colour channel of an RGB(A) line like that channel alone as a gray line", () => {
    // `rgba` has different channels (the full path); each channel alone is gray (the one-channel path).
    const plane = 48 * 320;
    const colour = recognitionBatch([rgba], { channelOrder: "rgb" }).data;
    for (const c of [0, 1, 2]) {
      const data = Uint8Array.from({ length: rgba.width * rgba.height }, (_, i) => rgba.data[i * 4 + c]!);
      const alone = recognitionBatch([{ ...rgba, channels: 1, data }]).data;
      expect(colour.subarray(c * plane, (c + 1) * plane)).toEqual(alone.subarray(0, plane));
    }
  });

  it("stacks with an already materialized tensor by copying", () => {
    const eager = recognitionBatch([rgba]);
    const materialized = { name: "x", datatype: "FP32" as const, shape: eager.dims, data: eager.data };
    const stacked = concatRows([deferredLines("x", [short]), materialized], 3);
    expect(stacked.data).toEqual(recognitionBatch([short, rgba]).data);
  });
});
