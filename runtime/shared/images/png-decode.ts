/**
 * A small PNG decoder for the common text-line images: 8-bit grayscale, grayscale+alpha, RGB or
 * RGBA, not interlaced. It inflates with node's native zlib and undoes the scanline filters in one
 * pass, about 3x cheaper than pngjs, which the worker used to spend most of its own CPU per line on.
 * Anything else (palettes, 16-bit, interlacing) returns undefined so the caller can use pngjs.
 * Chunk CRCs are not checked: zlib's own checksum covers the pixel data.
 */
import { inflateSync } from "node:zlib";
import type { PixelImage } from "./ocr-preprocess.js";

/** Channels per colour type (PNG spec 11.2.2) of the types decoded here. */
const CHANNELS: Record<number, 1 | 2 | 3 | 4> = { 0: 1, 4: 2, 2: 3, 6: 4 };

/** A PNG that is not well formed; the message says where. */
export class PngFormatError extends Error {}

/**
 * Decodes `png` (signature already checked) into its own channels, or undefined when the format is
 * one this decoder leaves to pngjs. Throws PngFormatError for a broken file.
 */
export function decodeSimplePng(png: Buffer): PixelImage | undefined {
  let offset = 8;
  let header: { width: number; height: number; channels: 1 | 2 | 3 | 4 } | undefined;
  const idat: Buffer[] = [];
  while (offset + 8 <= png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString("latin1", offset + 4, offset + 8);
    const data = offset + 8;
    if (data + length + 4 > png.length) throw new PngFormatError(`chunk ${type} runs past the end`);
    if (type === "IHDR") {
      if (length < 13) throw new PngFormatError("IHDR is too short");
      const [depth, colour, , , interlace] = png.subarray(data + 8, data + 13);
      const channels = CHANNELS[colour!];
      if (depth !== 8 || channels === undefined || interlace !== 0) return undefined;
      header = { width: png.readUInt32BE(data), height: png.readUInt32BE(data + 4), channels };
    } else if (type === "IDAT") {
      idat.push(png.subarray(data, data + length));
    } else if (type === "IEND") {
      break;
    }
    offset = data + length + 4;
  }
  if (!header) throw new PngFormatError("no IHDR chunk");
  if (idat.length === 0) throw new PngFormatError("no IDAT chunk");
  const { width, height, channels } = header;
  if (width < 1 || height < 1) throw new PngFormatError(`size ${width}x${height}`);
  const stride = width * channels;
  let raw: Buffer;
  try {
    // An output chunk one byte larger than the pixels: zlib inflates into a single buffer, not 16 KB
    // chunks joined by a copy at the end (a longer stream still inflates whole, in more chunks).
    const chunkSize = Math.max(64, (stride + 1) * height + 1);
    raw = inflateSync(idat.length === 1 ? idat[0]! : Buffer.concat(idat), { chunkSize });
  } catch (error) {
    throw new PngFormatError(`image data does not inflate: ${(error as Error).message}`);
  }
  if (raw.length < (stride + 1) * height) {
    throw new PngFormatError(
      `image data has ${raw.length} bytes, ${width}x${height} needs ${(stride + 1) * height}`,
    );
  }
  return { width, height, channels, data: unfilter(raw, width, height, channels) };
}

/**
 * Undoes the per-scanline filters (PNG spec 9.2) in place, then packs the rows together (dropping
 * each row's filter byte), so the pixels reuse the inflated buffer instead of a copy. The first row
 * reads a row of zeros above it; the first pixel of a row reads zeros to its left.
 */
function unfilter(inflated: Buffer, width: number, height: number, bpp: number): Uint8Array {
  const raw = new Uint8Array(inflated.buffer, inflated.byteOffset, inflated.length);
  const stride = width * bpp;
  const line = stride + 1;
  for (let y = 0; y < height; y++) {
    const start = y * line + 1; // the row's first byte, after its filter type
    const end = start + stride;
    const filter = raw[start - 1]!;
    if (filter === 0) continue;
    if (filter === 1) {
      for (let i = start + bpp; i < end; i++) raw[i] = raw[i]! + raw[i - bpp]!;
    } else if (filter === 2) {
      if (y > 0) for (let i = start; i < end; i++) raw[i] = raw[i]! + raw[i - line]!;
    } else if (filter === 3) {
      if (y === 0) {
        for (let i = start + bpp; i < end; i++) raw[i] = raw[i]! + (raw[i - bpp]! >> 1);
      } else {
        for (let i = start; i < start + bpp; i++) raw[i] = raw[i]! + (raw[i - line]! >> 1);
        for (let i = start + bpp; i < end; i++) raw[i] = raw[i]! + ((raw[i - bpp]! + raw[i - line]!) >> 1);
      }
    } else if (filter === 4) {
      if (y === 0) {
        // Above is zeros: Paeth picks the left neighbour, as filter 1 does.
        for (let i = start + bpp; i < end; i++) raw[i] = raw[i]! + raw[i - bpp]!;
      } else {
        for (let i = start; i < start + bpp; i++) raw[i] = raw[i]! + raw[i - line]!; // a = c = 0 picks b
        for (let i = start + bpp; i < end; i++) {
          const a = raw[i - bpp]!;
          const b = raw[i - line]!;
          const c = raw[i - line - bpp]!;
          const pa = Math.abs(b - c);
          const pb = Math.abs(a - c);
          const pc = Math.abs(a + b - 2 * c);
          raw[i] = raw[i]! + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
        }
      }
    } else throw new PngFormatError(`row ${y} has unknown filter type ${filter}`);
  }
  for (let y = 0; y < height; y++) raw.copyWithin(y * stride, y * line + 1, y * line + 1 + stride);
  return raw.subarray(0, stride * height);
}
