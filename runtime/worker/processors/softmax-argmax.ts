/**
 * softmax-argmax: class scores -> the winning class and its probability.
 *
 * Input FP32 [..., classes] (named `logits`, or the only FP32 tensor). Outputs `label` INT64 [...]
 * and `probability` FP32 [...]. Softmax is applied over the last axis unless every row already is a
 * probability distribution (values in [0, 1] summing to 1 within 1e-3), as when the model ends in
 * a Softmax node (e.g. the PP-OCR direction classifier): softmax twice would flatten the
 * probabilities while keeping the same winner.
 */
import { isDistribution } from "../probability-rows.js";
import { pickInput, ProcessorInputError, type Processor } from "./processor.js";

/** Index and probability of the best class of each row of a row-major [rows, classes] array. */
export function softmaxArgmax(
  data: Float32Array,
  classes: number,
): { labels: BigInt64Array; probabilities: Float32Array } {
  const rows = data.length / classes;
  const labels = new BigInt64Array(rows);
  const probabilities = new Float32Array(rows);
  const normalized = isDistribution(data, classes);
  for (let r = 0; r < rows; r++) {
    const offset = r * classes;
    let best = 0;
    let max = data[offset]!;
    for (let c = 1; c < classes; c++) {
      if (data[offset + c]! > max) {
        max = data[offset + c]!;
        best = c;
      }
    }
    let probability = max;
    if (!normalized) {
      // exp(x - max) keeps the sum finite for large scores.
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += Math.exp(data[offset + c]! - max);
      probability = 1 / sum;
    }
    labels[r] = BigInt(best);
    probabilities[r] = probability;
  }
  return { labels, probabilities };
}

/** The softmax-argmax processor. */
export const softmaxArgmaxProcessor: Processor = {
  name: "softmax-argmax",
  run(inputs) {
    const input = pickInput(inputs, "softmax-argmax", "logits", "FP32");
    const classes = input.shape.at(-1);
    if (input.shape.length < 1 || !classes) {
      throw new ProcessorInputError(`softmax-argmax needs [..., classes], got [${input.shape.join(", ")}]`);
    }
    const { labels, probabilities } = softmaxArgmax(input.data as Float32Array, classes);
    const shape = input.shape.slice(0, -1);
    return [
      { name: "label", datatype: "INT64", shape, data: labels },
      { name: "probability", datatype: "FP32", shape, data: probabilities },
    ];
  },
};
