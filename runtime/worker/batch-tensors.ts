/**
 * Pure tensor plumbing of dynamic batching: which requests can share a model run, how their inputs
 * are stacked along dimension 0, and how the outputs are cut back into per-request pieces.
 */
import {
  allocateTyped,
  type DecodedTensor,
  type NumericArray,
  type NumericDatatype,
} from "../shared/tensors.js";
import { rowWriter } from "./tasks/ocr/deferred-lines.js";

/**
 * A key that is equal for requests whose inputs can be stacked: same names, datatypes and every
 * dimension except 0 (the batch) and `padAxis` (padded to the largest size, e.g. OCR line width).
 */
export function batchKey(feeds: readonly DecodedTensor[], padAxis?: number): string {
  return feeds
    .map((t) => {
      const dims = t.shape.slice(1).map((d, i) => (i + 1 === padAxis ? "*" : String(d)));
      return `${t.name}:${t.datatype}:${dims.join("x")}`;
    })
    .join("|");
}

/** Rows (dimension 0) a request contributes; its tensors must agree on it. */
export function rowCount(feeds: readonly DecodedTensor[]): number | undefined {
  const rows = new Set(feeds.map((t) => t.shape[0]));
  const [only] = rows;
  return rows.size === 1 && only !== undefined ? only : undefined;
}

/**
 * Stacks same-named tensors along dimension 0. With `padAxis`, smaller sizes on that axis are padded
 * at the end with zeros (empty strings for BYTES): for OCR, zero is the normalized mid-grey that
 * PaddleOCR pads lines with, and the extra time steps decode as blanks. `allocate` gives the
 * zero-filled stacked array (a model runner's, to reuse memory its earlier runs gave back).
 */
export function concatRows(
  parts: readonly DecodedTensor[],
  padAxis?: number,
  allocate: (datatype: NumericDatatype, length: number) => NumericArray = allocateTyped,
): DecodedTensor {
  const first = parts[0];
  if (!first) throw new Error("concatRows needs at least one tensor");
  if (parts.length === 1) return first;
  const shape = [...first.shape];
  shape[0] = parts.reduce((n, p) => n + p.shape[0]!, 0);
  if (padAxis !== undefined) shape[padAxis] = Math.max(...parts.map((p) => p.shape[padAxis]!));
  for (const part of parts) {
    const same = part.shape.every((d, i) => i === 0 || i === padAxis || d === first.shape[i]);
    if (part.datatype !== first.datatype || part.shape.length !== shape.length || !same) {
      throw new Error(`cannot stack ${first.name} [${first.shape}] with [${part.shape}] (${part.datatype})`);
    }
  }
  if (first.datatype === "BYTES") {
    const data: Uint8Array[] = [];
    for (const part of parts)
      copyBlocks(part, shape, padAxis, (from, to, fill) => {
        for (let i = from; i < to; i++) data.push((part.data as Uint8Array[])[i]!);
        for (let i = 0; i < fill; i++) data.push(new Uint8Array(0));
      });
    return { name: first.name, datatype: first.datatype, shape, data };
  }
  const total = shape.reduce((n, d) => n * d, 1);
  const out = allocate(first.datatype, total);
  const writers = parts.map(rowWriter);
  if (padAxis === shape.length - 1 && writers.every((w) => w !== undefined)) {
    // Deferred OCR lines: each writes its rows straight into the batch, padded to its width.
    const rowSize = total / shape[0]!;
    let row = 0;
    parts.forEach((part, i) => {
      writers[i]!(out as Float32Array, row * rowSize, shape[padAxis]!);
      row += part.shape[0]!;
    });
    return { name: first.name, datatype: first.datatype, shape, data: out };
  }
  let offset = 0;
  for (const part of parts) {
    copyBlocks(part, shape, padAxis, (from, to, fill) => {
      (out as Float32Array).set((part.data as Float32Array).subarray(from, to), offset);
      offset += to - from + fill; // the fill stays zero
    });
  }
  return { name: first.name, datatype: first.datatype, shape, data: out };
}

/**
 * Calls `copy(from, to, fill)` for each contiguous run of `part` in stacking order: the run's
 * element range and how many padding elements follow it in the stacked tensor.
 */
function copyBlocks(
  part: DecodedTensor,
  stacked: readonly number[],
  padAxis: number | undefined,
  copy: (from: number, to: number, fill: number) => void,
): void {
  const length = part.shape.reduce((n, d) => n * d, 1);
  if (padAxis === undefined || part.shape[padAxis] === stacked[padAxis]) return copy(0, length, 0);
  const inner = part.shape.slice(padAxis + 1).reduce((n, d) => n * d, 1);
  const run = part.shape[padAxis]! * inner;
  const fill = (stacked[padAxis]! - part.shape[padAxis]!) * inner;
  for (let from = 0; from < length; from += run) copy(from, from + run, fill);
}

/** Cuts a stacked output into consecutive pieces of `rows[i]` rows along dimension 0. */
export function splitRows(tensor: DecodedTensor, rows: readonly number[]): DecodedTensor[] {
  const total = rows.reduce((n, r) => n + r, 0);
  if (tensor.shape[0] !== total) {
    throw new Error(`output ${tensor.name} has ${tensor.shape[0]} rows, the batch has ${total}`);
  }
  if (rows.length === 1) return [tensor];
  const rowSize = tensor.shape.slice(1).reduce((n, d) => n * d, 1);
  let start = 0;
  return rows.map((count) => {
    const from = start * rowSize;
    const to = (start + count) * rowSize;
    start += count;
    const shape = [count, ...tensor.shape.slice(1)];
    const data =
      tensor.datatype === "BYTES"
        ? (tensor.data as Uint8Array[]).slice(from, to)
        : // slice (not subarray): each request's tensor owns its memory once the batch is gone.
          (tensor.data as NumericArray).slice(from, to);
    return { name: tensor.name, datatype: tensor.datatype, shape, data };
  });
}
