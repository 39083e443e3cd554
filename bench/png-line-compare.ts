/**
 * The worker's per-line image work alone, side by side: each checkout's PNG decode (decodePng) and
 * resize into a batch tensor (writeLine) of section 2's bench line, in one process, the checkouts
 * alternating round by round, and their tensors compared byte for byte. Run it pinned to one core,
 * as the worker runs on dedicated cores:
 *
 *   taskset -c 1 npx tsx bench/png-line-compare.ts --roots=/path/to/before,. [--rounds=20] [--lines=500]
 *
 * Measurements only; nothing asserts (a differing tensor is printed and exits non-zero).
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { renderLinePng } from "../test/fixtures/text-line.js";
import { arg, rootsArg } from "./lib/compare-sides.js";
import { BENCH_LINE } from "./lib/env.js";
import { percentile, round } from "./lib/stats.js";
import type { PixelImage } from "../runtime/shared/images/ocr-preprocess.js";

interface Side {
  root: string;
  decodePng: (element: Uint8Array, index: number) => PixelImage;
  writeLine: (image: PixelImage, out: Float32Array, offset: number, width: number, bgr: boolean) => void;
  decode: number[];
  resize: number[];
}

async function load(root: string): Promise<Side> {
  const at = (file: string) => pathToFileURL(join(root, "runtime/shared/images", file)).href;
  const { decodePng } = (await import(at("decode-png.ts"))) as Pick<Side, "decodePng">;
  const { writeLine } = (await import(at("ocr-preprocess.ts"))) as Pick<Side, "writeLine">;
  return { root, decodePng, writeLine, decode: [], resize: [] };
}

const BATCH = 4;

/** CPU ms of this process since `start` (all threads: on one core, GC helpers take the same core). */
function cpuMs(start: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(start);
  return (user + system) / 1000;
}
const LINE = 3 * 48 * 320;

async function main(): Promise<void> {
  const sides = await Promise.all(rootsArg().map(load));
  const rounds = Number(arg("rounds", "20"));
  const lines = Number(arg("lines", "500"));
  const png = new Uint8Array(renderLinePng(BENCH_LINE));
  const tensors = sides.map((side) => {
    const out = new Float32Array(LINE);
    side.writeLine(side.decodePng(png, 0), out, 0, 320, true);
    return Buffer.from(out.buffer);
  });
  if (tensors.some((t) => !t.equals(tensors[0]!))) {
    console.error("the checkouts' tensors differ");
    process.exitCode = 1;
    return;
  }
  for (let r = 0; r < rounds; r++) {
    for (const side of r % 2 ? [...sides].reverse() : sides) {
      const out = new Float32Array(BATCH * LINE);
      // A batch's lines live until it is stacked, as in the worker; GC is in the figures.
      const images: PixelImage[] = [];
      let t = process.cpuUsage();
      for (let i = 0; i < lines; i++) images[i % BATCH] = side.decodePng(png, 0);
      side.decode.push(cpuMs(t) / lines);
      t = process.cpuUsage();
      for (let i = 0; i < lines; i++) side.writeLine(images[i % BATCH]!, out, (i % BATCH) * LINE, 320, true);
      side.resize.push(cpuMs(t) / lines);
    }
  }
  for (const side of sides) {
    const fmt = (xs: number[]) =>
      `${xs.map((x) => round(x, 3)).join(" / ")} (median ${round(
        percentile(
          [...xs].sort((a, b) => a - b),
          50,
        ),
        3,
      )})`;
    console.log(
      `${side.root}\n  decode CPU ms/line ${fmt(side.decode)}\n  resize CPU ms/line ${fmt(side.resize)}`,
    );
  }
}

await main();
