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
import { PNG } from "pngjs";
import {
  MAX_RECOGNITION_WIDTH,
  RECOGNITION_HEIGHT,
  recognitionBatch,
  recognitionWidthFor,
  type PixelImage,
} from "../tasks/ocr/ocr-preprocess.js";
import { decodeSimplePng } from "../tasks/ocr/png-decode.js";
import { elementCount, type DecodedTensor } from "../../shared/tensors.js";
import { pickInput, ProcessorInputError, ProcessorSettingError, type Processor } from "./processor.js";

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Refuse images that would take seconds to decode; a text line is far smaller. */
const MAX_PIXELS = 16_000_000;

/** Decodes one PNG element into RGBA pixels; throws ProcessorInputError naming the element. */
export function decodePng(element: Uint8Array, index: number): PixelImage {
  let bytes = Buffer.from(element.buffer, element.byteOffset, element.byteLength);
  if (!bytes.subarray(0, 8).equals(PNG_SIGNATURE)) {
    const text = bytes.toString("latin1").trim();
    const decoded = /^[A-Za-z0-9+/=\s]+$/.test(text) ? Buffer.from(text, "base64") : undefined;
    if (!decoded?.subarray(0, 8).equals(PNG_SIGNATURE)) {
      throw new ProcessorInputError(`image ${index} is not a PNG`);
    }
    bytes = decoded;
  }
  const width = bytes.length >= 24 ? bytes.readUInt32BE(16) : 0;
  const height = bytes.length >= 24 ? bytes.readUInt32BE(20) : 0;
  if (width * height > MAX_PIXELS) {
    throw new ProcessorInputError(`image ${index} is ${width}x${height}, over ${MAX_PIXELS} pixels`);
  }
  try {
    // The common 8-bit formats natively inflated; palettes, 16-bit and interlacing through pngjs.
    const simple = decodeSimplePng(bytes);
    if (simple) return simple;
    const png = PNG.sync.read(bytes);
    return { width: png.width, height: png.height, data: png.data, channels: 4 };
  } catch (error) {
    throw new ProcessorInputError(`image ${index} is not a valid PNG: ${(error as Error).message}`);
  }
}

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
