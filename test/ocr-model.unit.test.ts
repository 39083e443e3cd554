import { performance } from "node:perf_hooks";

import { InferenceSession, Tensor } from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { renderLinePixels } from "./fixtures/text-line.js";
import {
  ctcBestPath,
  ctcClasses,
  ctcDecodeBestPath,
  ctcGreedyDecode,
  isSoftmax,
  loadDictionary,
} from "../runtime/worker/tasks/ocr/ctc-decode.js";
import { ocrModelPaths } from "../runtime/worker/tasks/ocr/ocr-models.js";
import {
  recognitionBatch,
  recognitionInput,
  type PixelImage,
  type RecognitionTensor,
} from "../runtime/shared/images/ocr-preprocess.js";

const renderLine = (text: string): PixelImage => renderLinePixels(text);

/** Builds a [batch, steps, classes] softmax-like tensor with the given winning class per step. */
function oneHotOutput(
  rows: number[][],
  classes: number,
  winner = 0.9,
): { data: Float32Array; dims: number[] } {
  const steps = rows[0]?.length ?? 0;
  const data = new Float32Array(rows.length * steps * classes).fill((1 - winner) / (classes - 1));
  rows.forEach((row, b) => row.forEach((c, t) => (data[(b * steps + t) * classes + c] = winner)));
  return { data, dims: [rows.length, steps, classes] };
}

describe("ctcGreedyDecode", () => {
  const dictionary = ["a", "b", "c"]; // classes: 0 blank, 1 a, 2 b, 3 c, 4 space

  it("collapses repeats, drops blanks, keeps repeats split by a blank", () => {
    const { data, dims } = oneHotOutput([[0, 1, 1, 0, 1, 2, 2, 4, 3, 0]], 5);
    expect(ctcGreedyDecode(data, dims, dictionary)).toEqual([
      { text: "aab c", confidence: expect.closeTo(0.9, 6) },
    ]);
  });

  it("decodes each batch item separately", () => {
    const { data, dims } = oneHotOutput(
      [
        [3, 3, 0, 2],
        [0, 0, 0, 0],
      ],
      5,
    );
    const [first, second] = ctcGreedyDecode(data, dims, dictionary);
    expect(first?.text).toBe("cb");
    expect(second).toEqual({ text: "", confidence: 0 });
  });

  it("averages the max probability of kept characters only", () => {
    const classes = 5;
    const data = new Float32Array(4 * classes);
    data[0 * classes + 1] = 0.8; // a
    data[1 * classes + 1] = 0.2; // a again (repeat, dropped; wins with 0.2 against zeros)
    data[2 * classes + 0] = 0.99; // blank, dropped
    data[3 * classes + 2] = 0.6; // b
    const [result] = ctcGreedyDecode(data, [1, 4, classes], dictionary);
    expect(result?.text).toBe("ab");
    expect(result?.confidence).toBeCloseTo(0.7, 6);
  });

  it("maps classes as blank + dictionary + space, or without space, and rejects a mismatch", () => {
    expect(ctcClasses(dictionary, 5)).toEqual(["", "a", "b", "c", " "]);
    expect(ctcClasses(dictionary, 4)).toEqual(["", "a", "b", "c"]);
    expect(() => ctcClasses(dictionary, 7)).toThrow(/7 classes but the dictionary has 3/);
  });

  it("decodes a best path like a lookup in ctcClasses' table, with and without the space class", () => {
    // Every class, the space class, and indices out of range (-1, past the end, not an integer).
    const indices = [0, 1, 2, 2, 0, 2, 3, 4, 4, 0, 5, -1, 1.5, 1, 3];
    const best = new Float32Array(indices.flatMap((index, t) => [index, (t + 1) / 20]));
    for (const classCount of [4, 5]) {
      const classes = ctcClasses(dictionary, classCount);
      let expected = "";
      indices.forEach((index, t) => {
        if (index !== 0 && index !== indices[t - 1]) expected += classes[index] ?? "";
      });
      const [result] = ctcDecodeBestPath(best, [1, indices.length, 2], dictionary, classCount);
      expect(result?.text, `${classCount} classes`).toBe(expected);
    }
    expect(() => ctcDecodeBestPath(best, [1, indices.length, 2], dictionary, 7)).toThrow(/7 classes/);
  });

  it("rejects data that does not match the dims", () => {
    expect(() => ctcGreedyDecode(new Float32Array(9), [1, 2, 5], dictionary)).toThrow(/need 10/);
  });
});

describe("isSoftmax", () => {
  it("accepts probabilities summing to 1 per step and refuses logits or other sums", () => {
    expect(isSoftmax(Float32Array.from([0.7, 0.2, 0.1, 0, 0, 1]), 3)).toBe(true);
    expect(isSoftmax(Float32Array.from([2.5, -1, 0.1]), 3)).toBe(false);
    expect(isSoftmax(Float32Array.from([0.4, 0.4, 0.1]), 3)).toBe(false);
    expect(isSoftmax(Float32Array.from([0.5, 0.5]), 3)).toBe(false);
  });

  it("never changes the best path of a softmax when steps stop early", () => {
    // Rows with a late winner, ties, a flat row and a confident first class.
    const rows = [
      [0.1, 0.2, 0.3, 0.4],
      [0.25, 0.25, 0.25, 0.25],
      [0.3, 0.3, 0.4, 0],
      [0.97, 0.01, 0.01, 0.01],
      [0, 0, 0, 1],
    ];
    const data = Float32Array.from(rows.flat());
    expect(isSoftmax(data, 4)).toBe(true);
    expect(ctcBestPath(data, [1, rows.length, 4], true)).toEqual(ctcBestPath(data, [1, rows.length, 4]));
  });
});

describe("recognitionInput", () => {
  it("scales to height 48, normalizes to [-1, 1] in CHW and pads zeros on the right", () => {
    const white = new Uint8Array(96 * 24 * 3).fill(255);
    const { data, dims } = recognitionInput({ width: 96, height: 24, data: white }, { targetWidth: 320 });
    expect(dims).toEqual([1, 3, 48, 320]);
    // 96x24 becomes 192x48: white (1.0) up to x = 191, zero padding from x = 192 in every plane.
    for (const c of [0, 1, 2]) {
      const row = data.subarray(c * 48 * 320 + 47 * 320, c * 48 * 320 + 48 * 320);
      expect(row[0]).toBe(1);
      expect(row[191]).toBe(1);
      expect(row[192]).toBe(0);
      expect(row[319]).toBe(0);
    }
  });

  it("caps the width at the target and orders channels BGR by default", () => {
    const red = new Uint8Array(400 * 10 * 4);
    for (let i = 0; i < red.length; i += 4) red.set([255, 0, 0, 255], i);
    const bgr = recognitionInput({ width: 400, height: 10, data: red });
    expect(bgr.dims).toEqual([1, 3, 48, 320]);
    const plane = 48 * 320;
    expect([bgr.data[0], bgr.data[plane], bgr.data[2 * plane + 319]]).toEqual([-1, -1, 1]);
    const rgb = recognitionInput({ width: 400, height: 10, data: red }, { channelOrder: "rgb" });
    expect([rgb.data[0], rgb.data[2 * plane]]).toEqual([1, -1]);
  });
});

describe("PP-OCRv4 recognition on rendered text", () => {
  const lines = ["Turnpike 2026", "HELLO WORLD 42"];
  let session: InferenceSession;
  let dictionary: string[];

  beforeAll(async () => {
    const paths = ocrModelPaths();
    dictionary = loadDictionary(paths.dictionary);
    session = await InferenceSession.create(paths.recognition, { intraOpNumThreads: 2 });
  });

  afterAll(async () => {
    await session?.release();
  });

  async function recognize(input: RecognitionTensor) {
    const feeds = { [session.inputNames[0]!]: new Tensor("float32", input.data, input.dims) };
    const output = (await session.run(feeds))[session.outputNames[0]!]!;
    return {
      dims: output.dims,
      results: ctcGreedyDecode(output.data as Float32Array, output.dims, dictionary),
    };
  }

  it("locates all four model files in the package", () => {
    const paths = ocrModelPaths();
    expect(paths.recognition).toMatch(/ch_PP-OCRv4_rec_infer\.onnx$/);
    expect(paths.dictionary).toMatch(/ppocr_keys_v1\.txt$/);
    expect(paths.detection).toMatch(/ch_PP-OCRv4_det_infer\.onnx$/);
    expect(paths.classifier).toMatch(/ch_ppocr_mobile_v2\.0_cls_infer\.onnx$/);
    expect(() => ocrModelPaths("/nonexistent")).toThrow(
      /@gutenye\/ocr-models .*lacks assets\/ch_PP-OCRv4_rec/,
    );
  });

  it("recognizes each line exactly at batch 1", async () => {
    for (const line of lines) {
      const { dims, results } = await recognize(recognitionInput(renderLine(line)));
      expect(dims).toEqual([1, 40, dictionary.length + 2]);
      console.log(
        `recognized ${JSON.stringify(results[0]?.text)} confidence ${results[0]?.confidence.toFixed(4)}`,
      );
      expect(results[0]?.text).toBe(line);
      expect(results[0]?.confidence).toBeGreaterThan(0.8);
    }
  });

  it("recognizes a batch of 2 exactly", async () => {
    const input = recognitionBatch(lines.map((line) => renderLine(line)));
    expect(input.dims).toEqual([2, 3, 48, 320]);
    const { results } = await recognize(input);
    expect(results.map((r) => r.text)).toEqual(lines);
  });

  it("finds the same best path when a softmax output's steps stop early", async () => {
    const input = recognitionBatch([...lines, "x", "繁體 7"].map((line) => renderLine(line)));
    const feeds = { [session.inputNames[0]!]: new Tensor("float32", input.data, input.dims) };
    const output = (await session.run(feeds))[session.outputNames[0]!]!;
    const data = output.data as Float32Array;
    expect(isSoftmax(data, output.dims[2]!)).toBe(true);
    expect(ctcBestPath(data, output.dims, true)).toEqual(ctcBestPath(data, output.dims));
  });

  it("reports batch-1 latency (information only)", async () => {
    const input = recognitionInput(renderLine(lines[0]!));
    await recognize(input); // warm-up
    const times: number[] = [];
    for (let i = 0; i < 30; i++) {
      const start = performance.now();
      await recognize(input);
      times.push(performance.now() - start);
    }
    times.sort((a, b) => a - b);
    const mean = times.reduce((sum, t) => sum + t, 0) / times.length;
    console.log(
      `PP-OCRv4 rec 48x320 batch 1, 2 threads: median ${times[15]!.toFixed(1)} ms, ` +
        `mean ${mean.toFixed(1)} ms, min ${times[0]!.toFixed(1)} ms over ${times.length} runs`,
    );
  });
});
