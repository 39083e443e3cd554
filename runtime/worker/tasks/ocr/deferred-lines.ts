/**
 * OCR lines decoded from PNG when their task arrives, but resized and normalized only when their
 * batch is stacked, straight into the batch tensor (batch-tensors.ts concatRows).
 *
 * Why: a task arrives while the model runs the previous batch; in shared mode its two intra-op
 * threads then compete with the main thread for the two cores and their caches. The batch is
 * stacked when the model has just finished, so the resize (the larger half of the pre-processing)
 * runs while the model is idle, and each line skips its own 184 KB tensor and the copy into the
 * batch. Only the PNG decode (which can fail on bad input) stays on arrival.
 */
import type { DecodedTensor } from "../../../shared/tensors.js";
import {
  RECOGNITION_HEIGHT,
  recognitionWidthFor,
  writeLine,
  type PixelImage,
} from "../../../shared/images/ocr-preprocess.js";

/** Writes a deferred tensor's rows into a zero-filled stacked tensor at `offset`, `width` wide. */
export type RowWriter = (out: Float32Array, offset: number, width: number) => void;

/** The writer of a deferred tensor; concatRows calls it instead of reading `data`. */
export const WRITE_ROWS = Symbol("writeRows");

type Deferred = DecodedTensor & { [WRITE_ROWS]?: RowWriter };

/** The writer of `tensor` when it is a deferred one, else undefined. */
export function rowWriter(tensor: DecodedTensor): RowWriter | undefined {
  return (tensor as Deferred)[WRITE_ROWS];
}

/**
 * The recognition input of `images` as an FP32 [n, 3, 48, w] tensor whose data is computed on first
 * read (or written by concatRows into a batch); w as recognitionWidthFor, channels BGR.
 */
export function deferredLines(name: string, images: readonly PixelImage[]): DecodedTensor {
  const width = recognitionWidthFor(images);
  const write: RowWriter = (out, offset, stackedWidth) => {
    const lineSize = 3 * RECOGNITION_HEIGHT * stackedWidth;
    images.forEach((image, i) => writeLine(image, out, offset + i * lineSize, stackedWidth, true));
  };
  const shape = [images.length, 3, RECOGNITION_HEIGHT, width];
  let data: Float32Array | undefined;
  const tensor: Deferred = {
    name,
    datatype: "FP32",
    shape,
    get data() {
      if (!data) {
        data = new Float32Array(images.length * 3 * RECOGNITION_HEIGHT * width);
        write(data, 0, width);
      }
      return data;
    },
    [WRITE_ROWS]: write,
  };
  return tensor;
}
