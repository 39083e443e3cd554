// The pure halves of running a batch as its lines (runtime/worker/engines/onnx/line-pool.ts):
// cutting a batch's feeds into rows and stacking the rows' outputs back in order.
import { describe, expect, it } from "vitest";
import { rowOf, stackRows } from "../../runtime/worker/engines/onnx/line-pool.js";

describe("rowOf", () => {
  it("copies one row of a numeric feed into memory of its own", () => {
    const data = Float32Array.from({ length: 12 }, (_, i) => i);
    const row = rowOf({ name: "x", type: "float32", dims: [3, 2, 2], data }, 1);
    expect(row.dims).toEqual([1, 2, 2]);
    expect(Array.from(row.data as Float32Array)).toEqual([4, 5, 6, 7]);
    // Its own buffer, so it can be moved to a thread without taking the batch with it.
    expect((row.data as Float32Array).buffer.byteLength).toBe(16);
  });

  it("cuts string feeds by row too", () => {
    const row = rowOf({ name: "s", type: "string", dims: [2, 2], data: ["a", "b", "c", "d"] }, 1);
    expect(row).toEqual({ name: "s", type: "string", dims: [1, 2], data: ["c", "d"] });
  });
});

describe("stackRows", () => {
  it("stacks each output of the rows along dimension 0, in row order", () => {
    const row = (v: number) => [
      { name: "y", type: "float32", dims: [1, 2], data: Float32Array.of(v, v + 0.5) },
      { name: "n", type: "int64", dims: [1], data: BigInt64Array.of(BigInt(v)) },
    ];
    const [y, n] = stackRows([row(1), row(2), row(3)]);
    expect(y!.dims).toEqual([3, 2]);
    expect(Array.from(y!.data as Float32Array)).toEqual([1, 1.5, 2, 2.5, 3, 3.5]);
    expect(n!.data).toBeInstanceOf(BigInt64Array);
    expect(Array.from(n!.data as BigInt64Array)).toEqual([1n, 2n, 3n]);
  });

  it("refuses rows whose outputs differ beyond dimension 0", () => {
    const a = [{ name: "boxes", type: "float32", dims: [1, 3, 4], data: new Float32Array(12) }];
    const b = [{ name: "boxes", type: "float32", dims: [1, 5, 4], data: new Float32Array(20) }];
    expect(() => stackRows([a, b])).toThrow("output boxes: rows of [1,3,4] and [1,5,4] do not stack");
  });
});
