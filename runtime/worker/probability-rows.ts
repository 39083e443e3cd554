/**
 * Whether a model output's rows already are probability distributions (a softmax layer ends the
 * model): the softmax-argmax processor then does not apply softmax again, and the OCR best path
 * may stop scanning a row early. No imports, so the inference thread can load it.
 */

/**
 * Whether every row of row-major `data` ([rows, classes]) holds values in [0, 1] summing to 1
 * within `tolerance`.
 */
export function isDistribution(data: Float32Array, classes: number, tolerance = 1e-3): boolean {
  if (classes < 1 || data.length % classes !== 0) return false;
  for (let offset = 0; offset < data.length; offset += classes) {
    let sum = 0;
    for (let c = 0; c < classes; c++) {
      const v = data[offset + c]!;
      if (!(v >= 0 && v <= 1)) return false;
      sum += v;
    }
    if (Math.abs(sum - 1) > tolerance) return false;
  }
  return true;
}
