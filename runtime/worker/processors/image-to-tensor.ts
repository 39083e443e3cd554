/**
 * image-to-tensor: PNG text-line images -> the PP-OCR recognition input.
 *
 * Input `image` BYTES [n] (one PNG per element; an element may also be the base64 text of a PNG,
 * so a client that double-encodes still works). Output `x` FP32 [n, 3, 48, w], with w chosen by
 * recognitionWidthFor (320 unless a line is wider than 320:48).
 *
 * Step settings: `height` (only "48", the PP-OCR recognition height, is supported), `width` (a
 * fixed tensor width instead of the automatic one), `channelOrder` ("bgr", the default, or "rgb").
 */
import {
  MAX_RECOGNITION_WIDTH,
  RECOGNITION_HEIGHT,
  recognitionBatch,
  recognitionWidthFor,
} from "../../shared/images/ocr-preprocess.js";
import { decodePng } from "../../shared/images/decode-png.js";
import { elementCount, type DecodedTensor } from "../../shared/tensors.js";
import { pickInput, ProcessorInputError, ProcessorSettingError, type Processor } from "./processor.js";

/** The image-to-tensor processor. */
export const imageToTensor: Processor = {
  name: "image-to-tensor",
  run(inputs, context) {
    const input = pickInput(inputs, "image-to-tensor", "image", "BYTES");
    const count = elementCount(input.shape);
    if (count === 0) throw new ProcessorInputError("image-to-tensor needs at least one image");
    const { height, channelOrder } = context.settings;
    if (height !== undefined && Number(height) !== RECOGNITION_HEIGHT) {
      throw new ProcessorSettingError("image-to-tensor", `height ${height} is not supported (only 48)`);
    }
    if (channelOrder !== undefined && channelOrder !== "bgr" && channelOrder !== "rgb") {
      throw new ProcessorSettingError(
        "image-to-tensor",
        `channelOrder must be bgr or rgb, got ${channelOrder}`,
      );
    }
    const images = (input.data as Uint8Array[]).map(decodePng);
    const width = context.settings.width === undefined ? undefined : Number(context.settings.width);
    if (width !== undefined && !(Number.isInteger(width) && width >= 8 && width <= MAX_RECOGNITION_WIDTH)) {
      throw new ProcessorSettingError("image-to-tensor", `width must be 8..${MAX_RECOGNITION_WIDTH}`);
    }
    const tensor = recognitionBatch(images, {
      targetWidth: width ?? recognitionWidthFor(images),
      channelOrder: channelOrder ?? "bgr",
    });
    const output: DecodedTensor = { name: "x", datatype: "FP32", shape: tensor.dims, data: tensor.data };
    return [output];
  },
};
