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
  const left = Int32Array.from(xs.lower, (x) => x * channels);
  const right = Int32Array.from(xs.upper, (x) => x * channels);
  const fx = xs.fraction;
  const plane = height * width;
  // Output planes of source channels 0, 1, 2 (gray feeds all three from channel 0).
  const plane0 = offset + (bgr ? 2 : 0) * plane;
  const plane1 = offset + plane;
  const plane2 = offset + (bgr ? 0 : 2) * plane;
  // Lines stored as RGB(A) are often gray (black text on white): then one channel gives all three.
  const gray = channels < 3 || isGray(data, channels);
  const c1 = channels < 3 ? 0 : 1;
  const c2 = channels < 3 ? 0 : 2;
  for (let y = 0; y < height; y++) {
    const row0 = ys.lower[y]! * srcW * channels;
    const row1 = ys.upper[y]! * srcW * channels;
    const fy = ys.fraction[y]!;
    const at = y * width;
    if (gray) {
      // One channel to sample, and the other two planes are the same row.
      for (let x = 0; x < resizedW; x++) {
        const f = fx[x]!;
        out[plane0 + at + x] = sample(
          data,
          row0 + left[x]!,
          row0 + right[x]!,
          row1 + left[x]!,
          row1 + right[x]!,
          f,
          fy,
        );
      }
      out.copyWithin(plane1 + at, plane0 + at, plane0 + at + resizedW);
      out.copyWithin(plane2 + at, plane0 + at, plane0 + at + resizedW);
      continue;
    }
    for (let x = 0; x < resizedW; x++) {
      const f = fx[x]!;
      const a = row0 + left[x]!;
      const b = row0 + right[x]!;
      const c = row1 + left[x]!;
      const d = row1 + right[x]!;
      out[plane0 + at + x] = sample(data, a, b, c, d, f, fy);
      out[plane1 + at + x] = sample(data, a + c1, b + c1, c + c1, d + c1, f, fy);
      out[plane2 + at + x] = sample(data, a + c2, b + c2, c + c2, d + c2, f, fy);
    }
  }
}

/** Whether every pixel of RGB(A) `data` has equal red, green and blue (stops at the first that does not). */
function isGray(data: PixelImage["data"], channels: number): boolean {
  for (let i = 0; i < data.length; i += channels) {
    if (data[i] !== data[i + 1] || data[i] !== data[i + 2]) return false;
  }
  return true;
}

/**
 * Bilinear sample of one channel, rounded like cv2.resize does on uint8 images (so values match
 * PaddleOCR's), then normalized as PaddleOCR does: (v / 255 - 0.5) / 0.5.
 */
function sample(
  data: PixelImage["data"],
  p00: number,
  p01: number,
  p10: number,
  p11: number,
  fx: number,
  fy: number,
): number {
  const top = data[p00]! + (data[p01]! - data[p00]!) * fx;
  const bottom = data[p10]! + (data[p11]! - data[p10]!) * fx;
  return Math.round(top + (bottom - top) * fy) / 127.5 - 1;
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
