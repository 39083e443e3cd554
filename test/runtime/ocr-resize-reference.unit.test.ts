// The recognition input's resize against a plain per-pixel reference of the same rule (cv2
// INTER_LINEAR with half-pixel centres, rounded, normalised to v / 127.5 - 1, BGR planes, zero
// padding), bit for bit, for every channel count, gray and coloured RGB(A), flat areas and noise,
// shrinking and enlarging, and widths capped at the target. The fast paths (one channel sampled for
// gray lines, flat areas taken without arithmetic, four bytes per gray check) must not change a bit.
import { describe, expect, it } from "vitest";
import { recognitionBatch, type PixelImage } from "../../runtime/shared/images/ocr-preprocess.js";

function positions(outSize: number, srcSize: number): { lo: number[]; hi: number[]; f: number[] } {
  const lo: number[] = [];
  const hi: number[] = [];
  const f: number[] = [];
  const scale = srcSize / outSize;
  for (let i = 0; i < outSize; i++) {
    const s = Math.min(Math.max((i + 0.5) * scale - 0.5, 0), srcSize - 1);
    lo.push(Math.floor(s));
    hi.push(Math.min(Math.floor(s) + 1, srcSize - 1));
    f.push(Math.fround(s - Math.floor(s))); // the weights are kept as float32
  }
  return { lo, hi, f };
}

function reference(image: PixelImage, width: number): Float32Array {
  const { width: w, height: h, data } = image;
  const channels = image.channels!;
  const out = new Float32Array(3 * 48 * width);
  const resizedW = Math.min(width, Math.ceil((48 * w) / h));
  const xs = positions(resizedW, w);
  const ys = positions(48, h);
  const at = (x: number, y: number, c: number) => data[(y * w + x) * channels + (channels < 3 ? 0 : c)]!;
  for (let c = 0; c < 3; c++) {
    const plane = 2 - c; // BGR
    for (let y = 0; y < 48; y++) {
      for (let x = 0; x < resizedW; x++) {
        const [x0, x1, fx] = [xs.lo[x]!, xs.hi[x]!, xs.f[x]!];
        const [y0, y1, fy] = [ys.lo[y]!, ys.hi[y]!, ys.f[y]!];
        const top = at(x0, y0, c) + (at(x1, y0, c) - at(x0, y0, c)) * fx;
        const bottom = at(x0, y1, c) + (at(x1, y1, c) - at(x0, y1, c)) * fx;
        out[(plane * 48 + y) * width + x] = Math.round(top + (bottom - top) * fy) / 127.5 - 1;
      }
    }
  }
  return out;
}

/** Flat blocks (white with black bars, as text) and noisy blocks; gray when `gray`. */
function card(width: number, height: number, channels: 1 | 2 | 3 | 4, gray: boolean): PixelImage {
  const data = new Uint8Array(width * height * channels);
  for (let p = 0; p < width * height; p++) {
    const x = p % width;
    const y = Math.floor(p / width);
    const flat = (x >> 3) % 3 !== 0;
    const base = flat ? ((x >> 3) % 3 === 1 ? 255 : 0) : (p * 7919 + y * 31) & 0xff;
    for (let c = 0; c < channels; c++) {
      data[p * channels + c] = gray || flat ? base : (base + c * 53) & 0xff;
    }
  }
  return { width, height, data, channels };
}

describe("recognition input resize", () => {
  const sizes = [
    [419, 64],
    [37, 11],
    [1, 1],
    [900, 30],
    [160, 48],
    [50, 90],
  ] as const;
  for (const channels of [1, 2, 3, 4] as const) {
    for (const gray of channels < 3 ? [true] : [true, false]) {
      it(`matches the reference for ${channels} channel(s)${gray ? ", gray" : ", coloured"}`, () => {
        for (const [w, h] of sizes) {
          const image = card(w, h, channels, gray);
          const ours = recognitionBatch([image]).data;
          expect(
            Buffer.from(ours.buffer).equals(Buffer.from(reference(image, 320).buffer)),
            `${w}x${h}`,
          ).toBe(true);
        }
      });
    }
  }

  it("matches the reference for an RGBA line that is gray but one pixel", () => {
    const image = card(419, 64, 4, true);
    image.data[4 * 1000 + 1] = 17; // one green value off: the full three-channel path
    const ours = recognitionBatch([image]).data;
    expect(Buffer.from(ours.buffer).equals(Buffer.from(reference(image, 320).buffer))).toBe(true);
  });
});
