/**
 * Optional OCR pre-processing in the gateway (TURNPIKE_OCR_PREPROCESS=gateway): a request's PNG
 * lines are decoded, resized and normalised here into the recognition model's input tensor, and the
 * task carries that tensor instead of the PNGs, like KServe's transformer in front of a predictor.
 *
 * Why: on dedicated cores the worker's main thread shares its core with the model, so every
 * millisecond of image work there is one the model does not get; the gateway runs elsewhere (the
 * other core, or its own replicas in a cluster). The price is a larger task: the normalised line
 * has at most 256 distinct values, so the task body dictionary-encodes it (runtime/shared/
 * task-body.ts), about 46 KB per 48x320 line against a few KB of PNG, through the broker and its
 * disk. On a shared machine the same work only moves between processes, so the default stays
 * "worker" (bench/README.md, "Sixth round", has both measured).
 *
 * The code is the one the worker runs (runtime/shared/images: same decoder, same resize), so a
 * line gives the same tensor, to the bit, wherever it is made. Pure.
 */
import { decodePng } from "../shared/images/decode-png.js";
import { recognitionBatch, recognitionWidthFor } from "../shared/images/ocr-preprocess.js";
import type { ModelConfig, WireTensor } from "../shared/contracts/index.js";
import { taskSignature } from "../shared/models/task-signature.js";
import { decodeTensor } from "../shared/tensors.js";

/** Where OCR lines become tensors: in the worker (default) or in the gateway. */
export type OcrPreprocessSite = "worker" | "gateway";

/**
 * The task inputs for `model`: with the site "gateway" and an OCR recognition model sent its `image`
 * variant, the FP32 [n, 3, 48, w] tensor of the lines (raw little-endian bytes); else `inputs` as
 * they are. A PNG that does not decode throws a TensorError (400 invalid_tensor, before anything is
 * reserved).
 */
export function ocrLineTensors(
  site: OcrPreprocessSite,
  model: ModelConfig | undefined,
  inputs: WireTensor[],
): WireTensor[] {
  if (site !== "gateway" || model?.task !== "ocr-recognition") return inputs;
  const [image] = inputs;
  if (inputs.length !== 1 || image?.name !== "image" || image.datatype !== "BYTES") return inputs;
  const images = (decodeTensor(image).data as Uint8Array[]).map(decodePng);
  if (images.length === 0) return inputs;
  const { data, dims } = recognitionBatch(images, { targetWidth: recognitionWidthFor(images) });
  const tensorVariant = taskSignature(model).inputVariants.find((v) => v.id === "tensor");
  const name = tensorVariant?.tensors[0]?.name ?? "x";
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return [{ name, datatype: "FP32", shape: [...dims], data: bytes }];
}
