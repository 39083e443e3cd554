import { readFileSync } from "node:fs";
import { isDistribution } from "../../probability-rows.js";

/** Text recognized for one batch item. */
export interface CtcResult {
  /** Decoded text (repeats collapsed, blanks dropped). */
  text: string;
  /** Mean of the winning class probabilities over the kept characters; 0 when nothing was kept. */
  confidence: number;
}

/**
 * Reads a PaddleOCR character dictionary: one character per line, LF or CRLF endings.
 *
 * Lines are kept verbatim (a line may itself be a space); only a single trailing empty line left
 * by a final newline is dropped, since PaddleOCR reads the file line by line.
 */
export function loadDictionary(path: string): string[] {
  const lines = readFileSync(path, "utf8").split(/\r?\n/);
  if (lines.at(-1) === "") lines.pop();
  if (lines.length === 0) throw new Error(`dictionary ${path} is empty`);
  return lines;
}

/**
 * Builds the class table of a PaddleOCR CTC head from its dictionary.
 *
 * PaddleOCR's CTCLabelDecode puts the blank at index 0, then the dictionary lines, then (with
 * use_space_char, the default) a space. So a model has dictionary.length + 2 classes with the space
 * class, or + 1 without; anything else means the dictionary does not belong to the model.
 * (PP-OCRv4 rec with ppocr_keys_v1.txt: 6623 lines, 6625 classes.)
 */
export function ctcClasses(dictionary: readonly string[], classCount: number): string[] {
  checkClassCount(dictionary, classCount);
  return classCount === dictionary.length + 2 ? ["", ...dictionary, " "] : ["", ...dictionary];
}

/** Throws unless `classCount` fits `dictionary` (see {@link ctcClasses}). */
function checkClassCount(dictionary: readonly string[], classCount: number): void {
  if (classCount === dictionary.length + 2 || classCount === dictionary.length + 1) return;
  throw new Error(
    `model has ${classCount} classes but the dictionary has ${dictionary.length} entries ` +
      `(expected ${dictionary.length + 2} with blank and space, or ${dictionary.length + 1})`,
  );
}

/**
 * The text of class `index` of ctcClasses(dictionary, classCount), "" for the blank or an index
 * out of range, read from the dictionary itself: the decoding of every request used to copy the
 * whole table first (6,625 entries for PP-OCRv4, ~53 KB of garbage per request).
 */
function classText(dictionary: readonly string[], classCount: number, index: number): string {
  if (index >= 1 && index <= dictionary.length) return dictionary[index - 1] ?? "";
  return index === dictionary.length + 1 && classCount === dictionary.length + 2 ? " " : "";
}

/**
 * The best path of a CTC head: per time step the most probable class and its probability,
 * interleaved as [batch, timesteps, 2] (class, probability). The worker computes it in the model's
 * thread, so only these few values cross to the main thread instead of every class's probability
 * (6625 per time step for PP-OCRv4: about 1 MB per line).
 *
 * With `softmax` (every time step's values are probabilities summing to 1, see {@link isSoftmax}) a
 * step stops being scanned once its best value exceeds what the classes not yet read can still
 * sum to: no later class can beat it. Blank steps (class 0 at ~0.99) then cost one read and a
 * confident character stops at its class, about half the full scan's time; the result is the same.
 *
 * @param data softmax output, row-major [batch, timesteps, classes]
 */
export function ctcBestPath(data: Float32Array, dims: readonly number[], softmax = false): Float32Array {
  if (dims.length !== 3) throw new Error(`expected output dims [batch, timesteps, classes], got [${dims}]`);
  const [batch, steps, classCount] = dims as [number, number, number];
  if (data.length !== batch * steps * classCount || classCount < 1) {
    throw new Error(`output has ${data.length} values, dims [${dims}] need ${batch * steps * classCount}`);
  }
  const rows = batch * steps;
  const best = new Float32Array(rows * 2);
  for (let row = 0, offset = 0; row < rows; row++, offset += classCount) {
    let index = 0;
    let probability = data[offset]!;
    if (softmax) {
      // Mass of the classes read so far; the margin covers float32 rounding of the row's sum.
      let read = probability;
      for (let c = 1; c < classCount && probability <= 1 + SOFTMAX_MARGIN - read; c++) {
        const p = data[offset + c]!;
        read += p;
        if (p > probability) {
          index = c;
          probability = p;
        }
      }
    } else {
      for (let c = 1; c < classCount; c++) {
        const p = data[offset + c]!;
        if (p > probability) {
          index = c;
          probability = p;
        }
      }
    }
    best[2 * row] = index;
    best[2 * row + 1] = probability;
  }
  return best;
}

/** How far a softmax row's float32 sum may be from 1 (seen: 1 +- 2e-6 for PP-OCRv4). */
const SOFTMAX_MARGIN = 1e-3;

/**
 * Whether every time step of `data` ([..., classes]) holds probabilities in [0, 1] that sum to 1
 * within a tenth of {@link SOFTMAX_MARGIN} (the early stop allows the whole margin): then
 * {@link ctcBestPath} may stop scanning a step early. A model's output layer does not change
 * between runs, so the worker checks its first output (the warm-up's) once.
 */
export function isSoftmax(data: Float32Array, classCount: number): boolean {
  return isDistribution(data, classCount, SOFTMAX_MARGIN / 10);
}

/**
 * Greedy CTC decoding of a best path (see {@link ctcBestPath}): collapses consecutive repeats (on
 * the raw sequence, so "a, blank, a" stays "aa"), then drops blanks, as PaddleOCR does.
 *
 * @param best [batch, timesteps, 2] (class, probability)
 * @param classCount the model's classes (checked against the dictionary)
 */
export function ctcDecodeBestPath(
  best: Float32Array,
  dims: readonly number[],
  dictionary: readonly string[],
  classCount: number,
): CtcResult[] {
  if (dims.length !== 3 || dims[2] !== 2)
    throw new Error(`expected best path dims [batch, timesteps, 2], got [${dims}]`);
  const [batch, steps] = dims as [number, number, number];
  if (best.length !== batch * steps * 2) {
    throw new Error(`best path has ${best.length} values, dims [${dims}] need ${batch * steps * 2}`);
  }
  checkClassCount(dictionary, classCount);
  const results: CtcResult[] = [];
  for (let b = 0; b < batch; b++) {
    let text = "";
    let probabilitySum = 0;
    let kept = 0;
    let previous = -1;
    for (let t = 0; t < steps; t++) {
      const at = 2 * (b * steps + t);
      const index = best[at]!;
      if (index !== 0 && index !== previous) {
        text += classText(dictionary, classCount, index);
        probabilitySum += best[at + 1]!;
        kept++;
      }
      previous = index;
    }
    results.push({ text, confidence: kept === 0 ? 0 : probabilitySum / kept });
  }
  return results;
}

/**
 * Greedy CTC decoding of a recognition model's output: the best path, collapsed.
 *
 * @param data softmax output, row-major [batch, timesteps, classes]
 * @param dims the output's shape
 * @param dictionary dictionary lines as returned by {@link loadDictionary}
 */
export function ctcGreedyDecode(
  data: Float32Array,
  dims: readonly number[],
  dictionary: readonly string[],
): CtcResult[] {
  const best = ctcBestPath(data, dims);
  return ctcDecodeBestPath(best, [dims[0]!, dims[1]!, 2], dictionary, dims[2]!);
}
