/** A decoded image: 8-bit pixels, row-major, interleaved gray, gray+alpha, RGB or RGBA. */
export interface PixelImage {
  width: number;
  height: number;
  /** width * height * channels bytes; e.g. canvas ImageData.data or a decoded PNG. */
  data: Uint8Array | Uint8ClampedArray;
  /**
   * 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA); inferred from data.length when omitted. Alpha is
   * ignored and gray becomes equal R, G and B, as cv2.imread does.
   */
  channels?: 1 | 2 | 3 | 4;
}

/** Options of {@link recognitionInput} and {@link recognitionBatch}. */
export interface RecognitionInputOptions {
  /** Tensor width; lines are scaled to height 48 and then cut to or right-padded to this. Default 320. */
  targetWidth?: number;
  /**
   * Channel order of the tensor. PaddleOCR feeds cv2 images, which are BGR, so its models were
   * trained on BGR; "rgb" exists for models exported from RGB pipelines. Default "bgr".
   */
  channelOrder?: "bgr" | "rgb";
}

/** Float32 tensor data with its NCHW shape, ready for an onnxruntime Tensor. */
export interface RecognitionTensor {
  data: Float32Array;
  dims: [number, 3, number, number];
}

/** Input height of the PP-OCRv3/v4 recognition models. */
export const RECOGNITION_HEIGHT = 48;
/** Default tensor width (PaddleOCR rec_image_shape 3,48,320). */
export const RECOGNITION_WIDTH = 320;

/**
 * Turns one text-line image into the recognition model's input, as PaddleOCR's resize_norm_img:
 * bilinear resize to height 48 keeping the aspect ratio (width capped at the target width),
 * normalize each value to (v / 255 - 0.5) / 0.5, lay out CHW, and pad zeros on the right.
 */
export function recognitionInput(
  image: PixelImage,
  options: RecognitionInputOptions = {},
): RecognitionTensor {
  return recognitionBatch([image], options);
}

/** Like {@link recognitionInput} for several lines at once: dims [n, 3, 48, targetWidth]. */
export function recognitionBatch(
  images: readonly PixelImage[],
  options: RecognitionInputOptions = {},
): RecognitionTensor {
  const width = options.targetWidth ?? RECOGNITION_WIDTH;
  if (!Number.isInteger(width) || width < 1)
    throw new Error(`targetWidth must be a positive integer, got ${width}`);
  if (images.length === 0) throw new Error("recognitionBatch needs at least one image");
  const bgr = (options.channelOrder ?? "bgr") === "bgr";
  const itemSize = 3 * RECOGNITION_HEIGHT * width;
  // Zero-filled, so the padding right of each resized line is already 0 (mid-grey after normalizing).
  const data = new Float32Array(images.length * itemSize);
  images.forEach((image, i) => writeLine(image, data, i * itemSize, width, bgr));
  return { data, dims: [images.length, 3, RECOGNITION_HEIGHT, width] };
}

/** Resizes and normalizes one image into `out` at `offset` (a [3, 48, width] block, zero-filled). */
export function writeLine(
  image: PixelImage,
  out: Float32Array,
  offset: number,
  width: number,
  bgr: boolean,
): void {
  const { width: srcW, height: srcH, data } = image;
  if (!Number.isInteger(srcW) || !Number.isInteger(srcH) || srcW < 1 || srcH < 1) {
    throw new Error(`image size must be positive integers, got ${srcW}x${srcH}`);
  }
  const channels = image.channels ?? data.length / (srcW * srcH);
  if (channels !== 1 && channels !== 2 && channels !== 3 && channels !== 4) {
    throw new Error(`image data has ${data.length} bytes for ${srcW}x${srcH}: expected gray, RGB or RGBA`);
  }
  if (data.length !== srcW * srcH * channels) {
    throw new Error(
      `image data has ${data.length} bytes, ${srcW}x${srcH}x${channels} needs ${srcW * srcH * channels}`,
    );
  }
  const height = RECOGNITION_HEIGHT;
  const resizedW = Math.min(width, Math.ceil((height * srcW) / srcH));
  const xs = samplePositions(resizedW, srcW);
  const ys = samplePositions(height, srcH);
  const left = scaled(xs.lower, channels);
  const right = scaled(xs.upper, channels);
  const fx = xs.fraction;
  const plane = height * width;
  // Output planes of source channels 0, 1, 2 (gray feeds all three from channel 0).
  const plane0 = offset + (bgr ? 2 : 0) * plane;
  const plane1 = offset + plane;
  const plane2 = offset + (bgr ? 0 : 2) * plane;
  // Lines stored as RGB(A) are often gray (black text on white): then one channel gives all three.
  if (channels < 3 || isGray(data, channels)) {
    for (let y = 0; y < height; y++) {
      const row0 = ys.lower[y]! * srcW * channels;
      const row1 = ys.upper[y]! * srcW * channels;
      sampleRow(data, row0, row1, left, right, fx, ys.fraction[y]!, out, plane0 + y * width, resizedW);
    }
    // The other two planes are the same (their padding is zero in both).
    out.copyWithin(plane1, plane0, plane0 + plane);
    out.copyWithin(plane2, plane0, plane0 + plane);
    return;
  }
  for (let y = 0; y < height; y++) {
    const row0 = ys.lower[y]! * srcW * channels;
    const row1 = ys.upper[y]! * srcW * channels;
    const fy = ys.fraction[y]!;
    const at = y * width;
    sampleRow(data, row0, row1, left, right, fx, fy, out, plane0 + at, resizedW);
    sampleRow(data, row0 + 1, row1 + 1, left, right, fx, fy, out, plane1 + at, resizedW);
    sampleRow(data, row0 + 2, row1 + 2, left, right, fx, fy, out, plane2 + at, resizedW);
  }
}

/** `indices` times `factor`, as a new Int32Array (a loop, not a callback per element). */
function scaled(indices: Int32Array, factor: number): Int32Array {
  const out = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) out[i] = indices[i]! * factor;
  return out;
}

/** Whether every pixel of RGB(A) `data` has equal red, green and blue (stops at the first that does not). */
function isGray(data: PixelImage["data"], channels: number): boolean {
  if (channels === 4) {
    // Four bytes at a time: R = G and G = B when the low 16 bits of v ^ (v >>> 8) are zero.
    const words = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (let i = 0; i < data.length; i += 4) {
      const v = words.getUint32(i, true);
      if (((v ^ (v >>> 8)) & 0xffff) !== 0) return false;
    }
    return true;
  }
  for (let i = 0; i < data.length; i += channels) {
    if (data[i] !== data[i + 1] || data[i] !== data[i + 2]) return false;
  }
  return true;
}

/** v / 127.5 - 1 for every 8-bit value v: PaddleOCR's normalisation, (v / 255 - 0.5) / 0.5. */
const NORMALIZED = new Float64Array(256);
for (let v = 0; v < 256; v++) NORMALIZED[v] = v / 127.5 - 1;

/**
 * One output row of one channel: bilinear samples of source rows `row0` and `row1` (channel
 * offsets included) at the `left`/`right` columns, rounded like cv2.resize does on uint8 images (so
 * values match PaddleOCR's), then normalized. Where the four source pixels are equal (a flat area,
 * most of a text line) the sample is that value exactly, so the arithmetic is skipped.
 */
function sampleRow(
  data: PixelImage["data"],
  row0: number,
  row1: number,
  left: Int32Array,
  right: Int32Array,
  fx: Float32Array,
  fy: number,
  out: Float32Array,
  at: number,
  count: number,
): void {
  for (let x = 0; x < count; x++) {
    const p00 = data[row0 + left[x]!]!;
    const p01 = data[row0 + right[x]!]!;
    const p10 = data[row1 + left[x]!]!;
    const p11 = data[row1 + right[x]!]!;
    if (p00 === p01 && p10 === p11 && p00 === p10) {
      out[at + x] = NORMALIZED[p00]!;
      continue;
    }
    const f = fx[x]!;
    const top = p00 + (p01 - p00) * f;
    const bottom = p10 + (p11 - p10) * f;
    out[at + x] = NORMALIZED[Math.round(top + (bottom - top) * fy)]!;
  }
}

/** Per output index: the two source indices and the weight of the upper one (cv2 INTER_LINEAR). */
interface SamplePositions {
  lower: Int32Array;
  upper: Int32Array;
  fraction: Float32Array;
}

/** Maps output pixel centres to source coordinates with half-pixel alignment, clamped at the edges. */
function samplePositions(outSize: number, srcSize: number): SamplePositions {
  const lower = new Int32Array(outSize);
  const upper = new Int32Array(outSize);
  const fraction = new Float32Array(outSize);
  const scale = srcSize / outSize;
  for (let i = 0; i < outSize; i++) {
    const s = Math.min(Math.max((i + 0.5) * scale - 0.5, 0), srcSize - 1);
    const l = Math.floor(s);
    lower[i] = l;
    upper[i] = Math.min(l + 1, srcSize - 1);
    fraction[i] = s - l;
  }
  return { lower, upper, fraction };
}

/** Widest tensor {@link recognitionWidthFor} picks (about 42:1 text lines); bounds memory and time. */
export const MAX_RECOGNITION_WIDTH = 2048;

/**
 * Tensor width for a set of lines, as PaddleOCR's batch rule: wide enough for the widest line at
 * height 48 (so long lines are not squeezed), at least {@link RECOGNITION_WIDTH}, rounded up to a
 * multiple of 8 (the model's horizontal stride) and capped at {@link MAX_RECOGNITION_WIDTH}.
 */
export function recognitionWidthFor(images: readonly Pick<PixelImage, "width" | "height">[]): number {
  let width = RECOGNITION_WIDTH;
  for (const image of images) {
    width = Math.max(width, Math.ceil((RECOGNITION_HEIGHT * image.width) / image.height));
  }
  return Math.min(MAX_RECOGNITION_WIDTH, Math.ceil(width / 8) * 8);
}
