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
 * Undoes the per-scanline filters (PNG spec 9.2) and packs the rows together (dropping each row's
 * filter byte) in one pass, in place: row y is written at y * stride, left of where it is read
 * (y + 1 bytes earlier), so every byte is read before it is overwritten and the row above is always
 * already packed. The first row reads a row of zeros above it; the first pixel of a row reads zeros
 * to its left. Each filter has its own loop, Paeth one per pixel size, keeping neighbours in locals.
 */
function unfilter(inflated: Buffer, width: number, height: number, bpp: number): Uint8Array {
  const px = new Uint8Array(inflated.buffer, inflated.byteOffset, inflated.length);
  const words = new DataView(inflated.buffer, inflated.byteOffset, inflated.length);
  const stride = width * bpp;
  for (let y = 0; y < height; y++) {
    const src = y * (stride + 1) + 1; // the row's first byte, after its filter type
    const dst = y * stride;
    const filter = px[src - 1]!;
    if (filter === 0 || (filter === 2 && y === 0)) px.copyWithin(dst, src, src + stride);
    // Paeth with zeros above picks the left neighbour, as Sub does.
    else if (filter === 1 || (filter === 4 && y === 0)) unfilterSub(px, words, src, dst, stride, bpp);
    else if (filter === 2) unfilterUp(px, words, src, dst, stride);
    else if (filter === 3) unfilterAverage(px, src, dst, stride, bpp, y > 0);
    else if (filter === 4 && bpp === 4) unfilterPaeth4(px, src, dst, stride);
    else if (filter === 4) unfilterPaeth(px, src, dst, stride, bpp);
    else throw new PngFormatError(`row ${y} has unknown filter type ${filter}`);
  }
  return px.subarray(0, stride * height);
}

function unfilterSub(
  px: Uint8Array,
  words: DataView,
  src: number,
  dst: number,
  stride: number,
  bpp: number,
): void {
  if (bpp === 4) {
    let left = 0;
    for (let k = 0; k < stride; k += 4) {
      left = addBytes(words.getUint32(src + k, true), left);
      words.setUint32(dst + k, left, true);
    }
    return;
  }
  for (let k = 0; k < bpp; k++) px[dst + k] = px[src + k]!;
  for (let k = bpp; k < stride; k++) px[dst + k] = px[src + k]! + px[dst + k - bpp]!;
}

/**
 * Adds the four bytes of `x` and `y` each modulo 256 (no carry from one byte into the next): four
 * bytes of Up or of 4-byte Sub in one step, read and written through a DataView (rows are not
 * 4-byte aligned; both sides use the same byte order, so which one does not matter).
 */
function addBytes(x: number, y: number): number {
  return ((x & 0x7f7f7f7f) + (y & 0x7f7f7f7f)) ^ ((x ^ y) & 0x80808080);
}

function unfilterUp(px: Uint8Array, words: DataView, src: number, dst: number, stride: number): void {
  const up = dst - stride;
  let k = 0;
  for (; k + 4 <= stride; k += 4) {
    words.setUint32(dst + k, addBytes(words.getUint32(src + k, true), words.getUint32(up + k, true)), true);
  }
  for (; k < stride; k++) px[dst + k] = px[src + k]! + px[up + k]!;
}

function unfilterAverage(
  px: Uint8Array,
  src: number,
  dst: number,
  stride: number,
  bpp: number,
  hasUp: boolean,
): void {
  const up = dst - stride;
  if (!hasUp) {
    for (let k = 0; k < bpp; k++) px[dst + k] = px[src + k]!;
    for (let k = bpp; k < stride; k++) px[dst + k] = px[src + k]! + (px[dst + k - bpp]! >> 1);
    return;
  }
  for (let k = 0; k < bpp; k++) px[dst + k] = px[src + k]! + (px[up + k]! >> 1);
  for (let k = bpp; k < stride; k++) {
    px[dst + k] = px[src + k]! + ((px[dst + k - bpp]! + px[up + k]!) >> 1);
  }
}

/** The Paeth predictor of left `a`, above `b` and upper left `c` (PNG spec 9.4). */
function paeth(a: number, b: number, c: number): number {
  // Flat areas first (most of a text line): b = c makes pa 0, so a; a = c makes pb 0, so b.
  if (b === c) return a;
  if (a === c) return b;
  const pa = Math.abs(b - c);
  const pb = Math.abs(a - c);
  const pc = Math.abs(a + b - c - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Paeth on a row below another (the first row is Sub), any pixel size. */
function unfilterPaeth(px: Uint8Array, src: number, dst: number, stride: number, bpp: number): void {
  const up = dst - stride;
  for (let k = 0; k < bpp; k++) px[dst + k] = px[src + k]! + px[up + k]!; // a = c = 0 picks b
  for (let k = bpp; k < stride; k++) {
    px[dst + k] = px[src + k]! + paeth(px[dst + k - bpp]!, px[up + k]!, px[up + k - bpp]!);
  }
}

/** Paeth for 4-byte pixels (RGBA, the common line image): the left and upper-left pixels in locals. */
function unfilterPaeth4(px: Uint8Array, src: number, dst: number, stride: number): void {
  const up = dst - stride;
  let c0 = px[up]!;
  let c1 = px[up + 1]!;
  let c2 = px[up + 2]!;
  let c3 = px[up + 3]!;
  let a0 = (px[src]! + c0) & 255;
  let a1 = (px[src + 1]! + c1) & 255;
  let a2 = (px[src + 2]! + c2) & 255;
  let a3 = (px[src + 3]! + c3) & 255;
  px[dst] = a0;
  px[dst + 1] = a1;
  px[dst + 2] = a2;
  px[dst + 3] = a3;
  for (let k = 4; k < stride; k += 4) {
    const b0 = px[up + k]!;
    const b1 = px[up + k + 1]!;
    const b2 = px[up + k + 2]!;
    const b3 = px[up + k + 3]!;
    a0 = (px[src + k]! + paeth(a0, b0, c0)) & 255;
    a1 = (px[src + k + 1]! + paeth(a1, b1, c1)) & 255;
    a2 = (px[src + k + 2]! + paeth(a2, b2, c2)) & 255;
    a3 = (px[src + k + 3]! + paeth(a3, b3, c3)) & 255;
    px[dst + k] = a0;
    px[dst + k + 1] = a1;
    px[dst + k + 2] = a2;
    px[dst + k + 3] = a3;
    c0 = b0;
    c1 = b1;
    c2 = b2;
    c3 = b3;
  }
}
