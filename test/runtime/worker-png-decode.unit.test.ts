// The worker's own PNG decoder against pngjs: the same pixels for every filter type and the common
// 8-bit colour types, pngjs's formats left to pngjs, broken files refused with a reason, and the
// same model input either way.
import { PNG } from "pngjs";
import { describe, expect, it } from "vitest";
import { decodePng } from "../../runtime/shared/images/decode-png.js";
import { recognitionBatch } from "../../runtime/shared/images/ocr-preprocess.js";
import { decodeSimplePng, PngFormatError } from "../../runtime/shared/images/png-decode.js";
import { renderLinePng } from "../fixtures/text-line.js";

/** A noisy RGBA test card, so every filter type has something to predict. */
function card(width: number, height: number): PNG {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height * 4; i++) png.data[i] = (i * 7919 + ((i >> 3) % 13) * 31) & 0xff;
  return png;
}

/** pngjs's RGBA pixels of `png`, reduced to `channels` the way the decoder keeps them. */
function reference(png: Buffer, channels: number): number[] {
  const rgba = PNG.sync.read(png).data;
  const out: number[] = [];
  for (let i = 0; i < rgba.length; i += 4) {
    if (channels <= 2) out.push(rgba[i]!, ...(channels === 2 ? [rgba[i + 3]!] : []));
    else out.push(rgba[i]!, rgba[i + 1]!, rgba[i + 2]!, ...(channels === 4 ? [rgba[i + 3]!] : []));
  }
  return out;
}

describe("decodeSimplePng", () => {
  const colourTypes = [
    { colorType: 6, channels: 4 },
    { colorType: 2, channels: 3 },
    { colorType: 0, channels: 1 },
    { colorType: 4, channels: 2 },
  ] as const;
  for (const { colorType, channels } of colourTypes) {
    for (const filterType of [0, 1, 2, 3, 4, -1]) {
      it(`decodes colour type ${colorType} with filter ${filterType} like pngjs`, () => {
        const bytes = PNG.sync.write(card(37, 11), { colorType, inputColorType: 6, filterType });
        const image = decodeSimplePng(bytes)!;
        expect([image.width, image.height, image.channels]).toEqual([37, 11, channels]);
        expect(Array.from(image.data)).toEqual(reference(bytes, channels));
      });
    }
  }

  it("decodes small and odd sizes with flat areas like pngjs, for every filter and colour type", () => {
    // Flat blocks with edges (where Paeth's shortcuts apply) and noise, widths whose rows are not a
    // multiple of 4 bytes (the byte-at-a-time tail after 4-byte steps), down to 1x1.
    for (const width of [1, 2, 3, 5, 8, 13]) {
      for (const height of [1, 2, 3, 6]) {
        const png = new PNG({ width, height });
        for (let i = 0; i < width * height * 4; i++) {
          const pixel = i >> 2;
          const flat = (pixel % width >> 1) % 2 === 0 && (Math.floor(pixel / width) >> 1) % 2 === 0;
          png.data[i] = flat ? 200 + (i & 3) : (i * 7919 + ((i >> 3) % 13) * 31) & 0xff;
        }
        for (const { colorType, channels } of colourTypes) {
          for (const filterType of [0, 1, 2, 3, 4]) {
            const bytes = PNG.sync.write(png, { colorType, inputColorType: 6, filterType });
            const image = decodeSimplePng(bytes)!;
            expect(
              Array.from(image.data),
              `${width}x${height} type ${colorType} filter ${filterType}`,
            ).toEqual(reference(bytes, channels));
          }
        }
      }
    }
  });

  it("decodes the rendered bench line like pngjs", () => {
    const bytes = renderLinePng("Order 7731 shipped");
    expect(Array.from(decodeSimplePng(bytes)!.data)).toEqual(reference(bytes, 4));
  });

  it("leaves 16-bit and interlaced images to pngjs, and decodePng still reads them", () => {
    const deep = PNG.sync.write(card(9, 5), { bitDepth: 16, inputColorType: 6, colorType: 6 });
    expect(decodeSimplePng(deep)).toBeUndefined();
    expect(decodePng(new Uint8Array(deep), 0).width).toBe(9);
  });

  it("refuses broken files with a reason", () => {
    const good = renderLinePng("Hi");
    const truncated = good.subarray(0, good.length - 40);
    expect(() => decodeSimplePng(truncated)).toThrow(PngFormatError);
    const noHeader = Buffer.concat([
      good.subarray(0, 8),
      Buffer.from([0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0, 0, 0, 0]),
    ]);
    expect(() => decodeSimplePng(noHeader)).toThrow("no IHDR chunk");
    expect(() => decodePng(new Uint8Array(truncated), 2)).toThrow(/image 2 is not a valid PNG/);
  });

  it("gives the model the same tensor as pngjs did for a rendered line", () => {
    const bytes = renderLinePng("Order 7731 shipped");
    const ours = recognitionBatch([decodePng(new Uint8Array(bytes), 0)]);
    const decoded = PNG.sync.read(bytes);
    const theirs = recognitionBatch([
      { width: decoded.width, height: decoded.height, data: decoded.data, channels: 4 },
    ]);
    expect(ours.dims).toEqual(theirs.dims);
    expect(Buffer.from(ours.data.buffer).equals(Buffer.from(theirs.data.buffer))).toBe(true);
  });
});
