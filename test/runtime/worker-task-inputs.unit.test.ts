// A dictionary-encoded task input stays as its indices until read, and is expanded straight into
// the stacked batch: the same values, to the bit, as the eager decode and the copy it replaces.
import { describe, expect, it } from "vitest";
import { concatRows } from "../../runtime/worker/batch-tensors.js";
import { decodeTaskInput, renamed } from "../../runtime/worker/task-inputs.js";
import { rowWriter } from "../../runtime/worker/tasks/ocr/deferred-lines.js";
import { decodeTaskBody, encodeTaskBody, TaskBodyError } from "../../runtime/shared/task-body.js";
import { decodeTensor, type DecodedTensor } from "../../runtime/shared/tensors.js";
import type { WireTensor } from "../../runtime/shared/contracts/index.js";

/** A normalised-image-like FP32 tensor [n, 3, 4, width] of few distinct values, as a wire tensor. */
function lineTensor(n: number, width: number, seed: number): WireTensor {
  const values = new Float32Array(n * 3 * 4 * width);
  for (let i = 0; i < values.length; i++) values[i] = (((i * 7 + seed * 13) % 200) / 255 - 0.5) / 0.5;
  values[0] = -0; // the bit pattern, not the number, comes back
  return { name: "x", datatype: "FP32", shape: [n, 3, 4, width], data: new Uint8Array(values.buffer) };
}

/** The task inputs as the worker reads them (dictionaries kept) and as everyone else does. */
function throughBody(...inputs: WireTensor[]): { kept: DecodedTensor[]; eager: DecodedTensor[] } {
  const body = encodeTaskBody({ inputs } as never).content;
  const read = (keep: boolean) =>
    (decodeTaskBody(body, { keepDictionaries: keep }) as { inputs: WireTensor[] }).inputs;
  return { kept: read(true).map(decodeTaskInput), eager: read(false).map(decodeTensor) };
}

describe("dictionary task inputs", () => {
  it("read like the eager decode", () => {
    const { kept, eager } = throughBody(lineTensor(2, 320, 1));
    expect(rowWriter(kept[0]!)).toBeDefined();
    expect(kept[0]!.shape).toEqual(eager[0]!.shape);
    expect(new Uint8Array((kept[0]!.data as Float32Array).buffer)).toEqual(
      new Uint8Array((eager[0]!.data as Float32Array).buffer),
    );
  });

  it("are written straight into a batch padded to the widest, like the copy of the eager tensors", () => {
    const inputs = [lineTensor(1, 320, 1), lineTensor(2, 400, 2), lineTensor(1, 96, 3)];
    const { kept, eager } = throughBody(...inputs);
    const stacked = concatRows(kept, 3);
    const copied = concatRows(eager, 3);
    expect(stacked.shape).toEqual(copied.shape);
    expect(new Uint8Array((stacked.data as Float32Array).buffer)).toEqual(
      new Uint8Array((copied.data as Float32Array).buffer),
    );
  });

  it("keep their lazy data and writer under another name", () => {
    const { kept } = throughBody(lineTensor(1, 64, 4));
    const other = renamed(kept[0]!, "input");
    expect(other.name).toBe("input");
    expect(kept[0]!.name).toBe("x");
    expect(rowWriter(other)).toBe(rowWriter(kept[0]!));
    expect(other.data).toEqual(kept[0]!.data);
  });

  it("are refused when an index is past the table or the shape does not fit", () => {
    const body = encodeTaskBody({ inputs: [lineTensor(1, 320, 5)] } as never).content;
    const broken = Buffer.from(body);
    broken[broken.length - 1] = 255;
    expect(() => decodeTaskBody(broken, { keepDictionaries: true })).toThrow(TaskBodyError);
    expect(() => decodeTaskBody(broken, { keepDictionaries: true })).toThrow(
      /index 255 at element 3839, the dictionary has/,
    );
    const wire = (decodeTaskBody(body, { keepDictionaries: true }) as { inputs: WireTensor[] }).inputs[0]!;
    expect(() => decodeTaskInput({ ...wire, shape: [1, 3, 4, 321] })).toThrow(/needs 3852 elements/);
  });
});
