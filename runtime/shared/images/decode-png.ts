/**
 * One PNG element of a request -> RGBA or gray pixels, the same wherever it runs: the worker (the
 * image-to-tensor processor and OCR lines) and the gateway when it pre-processes OCR lines
 * (TURNPIKE_OCR_PREPROCESS=gateway), so a line gives the same tensor to the bit on either side.
 */
import { PNG } from "pngjs";
import { TensorError } from "../tensors.js";
import type { PixelImage } from "./ocr-preprocess.js";
import { decodeSimplePng } from "./png-decode.js";

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Refuse images that would take seconds to decode; a text line is far smaller. */
const MAX_PIXELS = 16_000_000;

/** Decodes one PNG element into RGBA pixels; throws a TensorError (a 400 / invalid_input) naming the element. */
export function decodePng(element: Uint8Array, index: number): PixelImage {
  let bytes = Buffer.from(element.buffer, element.byteOffset, element.byteLength);
  if (!bytes.subarray(0, 8).equals(PNG_SIGNATURE)) {
    const text = bytes.toString("latin1").trim();
    const decoded = /^[A-Za-z0-9+/=\s]+$/.test(text) ? Buffer.from(text, "base64") : undefined;
    if (!decoded?.subarray(0, 8).equals(PNG_SIGNATURE)) {
      throw new TensorError(`image ${index} is not a PNG`);
    }
    bytes = decoded;
  }
  const width = bytes.length >= 24 ? bytes.readUInt32BE(16) : 0;
  const height = bytes.length >= 24 ? bytes.readUInt32BE(20) : 0;
  if (width * height > MAX_PIXELS) {
    throw new TensorError(`image ${index} is ${width}x${height}, over ${MAX_PIXELS} pixels`);
  }
  try {
    // The common 8-bit formats natively inflated; palettes, 16-bit and interlacing through pngjs.
    const simple = decodeSimplePng(bytes);
    if (simple) return simple;
    const png = PNG.sync.read(bytes);
    return { width: png.width, height: png.height, data: png.data, channels: 4 };
  } catch (error) {
    throw new TensorError(`image ${index} is not a valid PNG: ${(error as Error).message}`);
  }
}
