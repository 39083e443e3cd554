/**
 * A minimal protobuf reader for the parts of the ONNX format Turnpike needs: a model's declared
 * inputs and outputs, read without loading it into onnxruntime (so a generic model's requests can
 * be validated without a 10 MB session per model). The matching writer of tiny test graphs is
 * test/fixtures/onnx-writer.ts.
 *
 * Field numbers follow onnx/onnx.proto3 (ModelProto, GraphProto, ValueInfoProto, TypeProto,
 * TensorShapeProto, TensorProto).
 */
import { readFileSync } from "node:fs";
import type { Datatype, TensorSpec } from "../contracts/index.js";
import type { ModelTensors } from "./task-signature.js";

/** TensorProto.DataType numbers of the datatypes Turnpike carries. */
export const ONNX_ELEM_TYPE: Record<Datatype, number> = {
  FP32: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BYTES: 8,
  BOOL: 9,
  FP16: 10,
  FP64: 11,
};
const DATATYPE_OF_ELEM = new Map(Object.entries(ONNX_ELEM_TYPE).map(([d, n]) => [n, d as Datatype]));

/** One decoded protobuf field: a varint (as number), or a view of length-delimited bytes. */
type Field = { field: number; varint?: number; bytes?: Uint8Array };

/** Iterates the fields of one message, skipping fixed-size fields' contents. */
function* fields(buf: Uint8Array): Generator<Field> {
  let pos = 0;
  const readVarint = (): number => {
    let result = 0;
    let scale = 1;
    for (;;) {
      if (pos >= buf.length) throw new Error("truncated protobuf varint");
      const byte = buf[pos++]!;
      result += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return result;
      scale *= 128;
    }
  };
  while (pos < buf.length) {
    const key = readVarint();
    const field = Math.floor(key / 8);
    const wireType = key & 7;
    if (wireType === 0) yield { field, varint: readVarint() };
    else if (wireType === 2) {
      const length = readVarint();
      if (pos + length > buf.length) throw new Error("truncated protobuf field");
      yield { field, bytes: buf.subarray(pos, pos + length) };
      pos += length;
    } else if (wireType === 1) pos += 8;
    else if (wireType === 5) pos += 4;
    else throw new Error(`unsupported protobuf wire type ${wireType}`);
  }
}

const utf8 = new TextDecoder();

/**
 * Reads the declared inputs and outputs of an ONNX model (file path or bytes) without
 * onnxruntime. Symbolic or unknown dimensions become -1; inputs that are also initializers (older
 * exporters list weights as inputs) are left out. Tensors of other element types are skipped.
 */
export function readOnnxTensors(model: string | Uint8Array): ModelTensors {
  const bytes = typeof model === "string" ? readFileSync(model) : model;
  let graph: Uint8Array | undefined;
  for (const f of fields(bytes)) if (f.field === 7 && f.bytes) graph = f.bytes;
  if (!graph) throw new Error("not an ONNX model: no graph");
  const initializers = new Set<string>();
  const inputs: TensorSpec[] = [];
  const outputs: TensorSpec[] = [];
  for (const f of fields(graph)) {
    if (f.field === 5 && f.bytes) {
      for (const t of fields(f.bytes)) if (t.field === 8 && t.bytes) initializers.add(utf8.decode(t.bytes));
    } else if ((f.field === 11 || f.field === 12) && f.bytes) {
      const spec = readValueInfo(f.bytes);
      if (spec) (f.field === 11 ? inputs : outputs).push(spec);
    }
  }
  return { inputs: inputs.filter((i) => !initializers.has(i.name)), outputs };
}

function readValueInfo(buf: Uint8Array): TensorSpec | undefined {
  let name = "";
  let tensorType: Uint8Array | undefined;
  for (const f of fields(buf)) {
    if (f.field === 1 && f.bytes) name = utf8.decode(f.bytes);
    if (f.field === 2 && f.bytes) {
      for (const t of fields(f.bytes)) if (t.field === 1 && t.bytes) tensorType = t.bytes;
    }
  }
  if (!tensorType) return undefined;
  let datatype: Datatype | undefined;
  const shape: number[] = [];
  for (const f of fields(tensorType)) {
    if (f.field === 1 && f.varint !== undefined) datatype = DATATYPE_OF_ELEM.get(f.varint);
    if (f.field === 2 && f.bytes) {
      for (const dim of fields(f.bytes)) {
        if (dim.field !== 1 || !dim.bytes) continue;
        let value = -1;
        for (const d of fields(dim.bytes)) if (d.field === 1 && d.varint !== undefined) value = d.varint;
        shape.push(value);
      }
    }
  }
  return datatype ? { name, datatype, shape } : undefined;
}
