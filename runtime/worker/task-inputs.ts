/**
 * A task's input tensors as the worker uses them. A dictionary-encoded tensor (a normalised image
 * line: at most 256 distinct values, see runtime/shared/tensor-dictionary.ts) stays as its indices
 * until it is read, and when its batch is stacked it is expanded straight into the batch tensor
 * (batch-tensors.ts concatRows, like tasks/ocr/deferred-lines.ts).
 *
 * Why: expanding it on arrival writes 184 KB per OCR line while the model runs on the same core
 * (dedicated cores), and allocates it only for concatRows to copy it into the batch. Stacked, it is
 * written once, while the model is idle.
 */
import type { WireTensor } from "../shared/contracts/index.js";
import { keptDictionary } from "../shared/task-body.js";
import { dictionaryValues } from "../shared/tensor-dictionary.js";
import {
  allocateTyped,
  decodeTensor,
  elementCount,
  TensorError,
  type DecodedTensor,
  type NumericArray,
} from "../shared/tensors.js";
import { WRITE_ROWS, type RowWriter } from "./tasks/ocr/deferred-lines.js";

/** The decoded tensor of a task input; a kept dictionary (decodeTaskBody) is expanded lazily. */
export function decodeTaskInput(wire: WireTensor): DecodedTensor {
  const table = wire.data instanceof Uint8Array ? keptDictionary(wire.data) : undefined;
  if (!table) return decodeTensor(wire);
  const indices = wire.data as Uint8Array;
  const { name, datatype } = wire;
  const shape = [...wire.shape];
  if (datatype !== "FP32" && datatype !== "INT32") {
    throw new TensorError(`tensor ${name}: a dictionary of 4-byte values cannot be ${datatype}`);
  }
  if (elementCount(shape) !== indices.length) {
    throw new TensorError(
      `tensor ${name}: ${datatype} [${shape.join(", ")}] needs ${elementCount(shape)} elements, got ${indices.length}`,
    );
  }
  const values = dictionaryValues(table);
  const width = shape.at(-1) ?? 1;
  // Rows of the last axis, each written at the stacked width; the zero fill is the padding.
  const write: RowWriter = (out, offset, stackedWidth) => {
    const words = new Int32Array(out.buffer, out.byteOffset, out.length);
    for (let from = 0, to = offset; from < indices.length; ) {
      for (let x = 0; x < width; x++) words[to + x] = values[indices[from + x]!]!;
      from += width;
      to += stackedWidth;
    }
  };
  let data: NumericArray | undefined;
  return {
    name,
    datatype,
    shape,
    get data() {
      if (!data) {
        data = allocateTyped(datatype, indices.length);
        write(data as Float32Array, 0, width);
      }
      return data;
    },
    [WRITE_ROWS]: write,
  } as DecodedTensor;
}

/** `tensor` under another name, its lazy data (if any) still unread. */
export function renamed(tensor: DecodedTensor, name: string): DecodedTensor {
  if (tensor.name === name) return tensor;
  const copy = Object.defineProperties({}, Object.getOwnPropertyDescriptors(tensor)) as DecodedTensor;
  copy.name = name;
  return copy;
}
