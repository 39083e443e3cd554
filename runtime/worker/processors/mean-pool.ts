/**
 * mean-pool: token embeddings -> one vector per text (sentence-transformers style).
 *
 * Input FP32 [n, tokens, dims] (named `last_hidden_state`, or the only rank-3 FP32 tensor) and,
 * when present among the inputs, `attention_mask` INT64/INT32 [n, tokens]: padding tokens are left
 * out of the mean. Output `embedding` FP32 [n, dims]. Setting `normalize: "true"` scales each
 * vector to unit length (what all-MiniLM-L6-v2 expects for cosine similarity).
 */
import type { DecodedTensor } from "../../shared/tensors.js";
import { ProcessorInputError, type Processor } from "./processor.js";

/** Mean of each row's token vectors, counting only tokens whose mask is non-zero. */
export function meanPool(
  data: Float32Array,
  [rows, tokens, dims]: readonly [number, number, number],
  mask?: ArrayLike<number | bigint>,
  normalize = false,
): Float32Array {
  const out = new Float32Array(rows * dims);
  for (let r = 0; r < rows; r++) {
    let kept = 0;
    for (let t = 0; t < tokens; t++) {
      if (mask && Number(mask[r * tokens + t]) === 0) continue;
      kept++;
      const from = (r * tokens + t) * dims;
      for (let d = 0; d < dims; d++) out[r * dims + d]! += data[from + d]!;
    }
    let norm = 0;
    for (let d = 0; d < dims; d++) {
      out[r * dims + d]! /= Math.max(kept, 1);
      norm += out[r * dims + d]! ** 2;
    }
    if (normalize && norm > 0) for (let d = 0; d < dims; d++) out[r * dims + d]! /= Math.sqrt(norm);
  }
  return out;
}

/** The mean-pool processor. */
export const meanPoolProcessor: Processor = {
  name: "mean-pool",
  run(inputs, context) {
    const hidden =
      inputs.find((t) => t.name === "last_hidden_state") ??
      only(inputs.filter((t) => t.datatype === "FP32" && t.shape.length === 3));
    if (!hidden) {
      throw new ProcessorInputError(
        "mean-pool needs an FP32 [batch, tokens, dims] tensor (last_hidden_state)",
      );
    }
    const [rows, tokens, dims] = hidden.shape as [number, number, number];
    const mask = inputs.find((t) => t.name === "attention_mask");
    if (mask && (mask.shape[0] !== rows || mask.shape[1] !== tokens || mask.datatype === "BYTES")) {
      throw new ProcessorInputError(
        `mean-pool: attention_mask [${mask.shape.join(", ")}] does not fit [${hidden.shape.join(", ")}]`,
      );
    }
    const data = meanPool(
      hidden.data as Float32Array,
      [rows, tokens, dims],
      mask?.data as ArrayLike<number | bigint> | undefined,
      context.settings.normalize === "true",
    );
    return [{ name: "embedding", datatype: "FP32", shape: [rows, dims], data }];
  },
};

function only(tensors: DecodedTensor[]): DecodedTensor | undefined {
  return tensors.length === 1 ? tensors[0] : undefined;
}
