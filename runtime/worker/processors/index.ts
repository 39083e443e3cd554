/** The registry of built-in processors, by the name pipelines use in `steps[].processor`. */
import { ctcDecode } from "./ctc-decode.js";
import { imageToTensor } from "./image-to-tensor.js";
import { meanPoolProcessor } from "./mean-pool.js";
import type { Processor } from "./processor.js";
import { softmaxArgmaxProcessor } from "./softmax-argmax.js";
import { tokenize } from "./tokenize.js";

export type { Processor, ProcessorContext } from "./processor.js";

/** Every built-in processor by name. */
export const PROCESSORS: ReadonlyMap<string, Processor> = new Map(
  [imageToTensor, ctcDecode, softmaxArgmaxProcessor, tokenize, meanPoolProcessor].map((p) => [p.name, p]),
);
