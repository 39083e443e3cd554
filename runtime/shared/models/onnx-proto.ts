/**
 * A minimal protobuf writer and reader for the parts of the ONNX format Turnpike needs:
 * - writing tiny test graphs (onnxruntime cannot build graphs, and we do not want a Python step),
 * - reading a model's declared inputs and outputs without loading it into onnxruntime (so the
 *   gateway can validate requests to a generic model without a 10 MB session per model).
 *
 * Field numbers follow onnx/onnx.proto3 (ModelProto, GraphProto, NodeProto, ValueInfoProto,
 * TypeProto, TensorShapeProto, TensorProto, AttributeProto, OperatorSetIdProto).
 */
import { readFileSync } from "node:fs";
import type { Datatype } from "../contracts.js";
import type { TensorSpec } from "../runtime-config.js";
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

/** A graph input or output; a string dimension is symbolic (dynamic), a number is fixed. */
export interface ValueSpec {
  name: string;
  datatype: Datatype;
  shape: (number | string)[];
}

/** A constant tensor of the graph (FP32 or INT64 only, which is all the tiny graphs need). */
export interface InitializerSpec {
  name: string;
  datatype: "FP32" | "INT64";
  dims: number[];
  values: number[];
}

/** One operator node; attributes are ints, floats or int lists. */
export interface NodeSpec {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  attributes?: Record<string, number | number[] | { float: number }>;
}

/** A whole single-graph model. */
export interface GraphSpec {
  name: string;
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  nodes: NodeSpec[];
  initializers?: InitializerSpec[];
  /** Default opset 17 of the default domain. */
  opset?: number;
}

/** Serializes a {@link GraphSpec} to ONNX ModelProto bytes (IR version 8). */
export function encodeModel(spec: GraphSpec): Uint8Array {
  const graph = new Writer();
  for (const node of spec.nodes) graph.message(1, encodeNode(node));
  graph.string(2, spec.name);
  for (const init of spec.initializers ?? []) graph.message(5, encodeInitializer(init));
  for (const input of spec.inputs) graph.message(11, encodeValueInfo(input));
  for (const output of spec.outputs) graph.message(12, encodeValueInfo(output));
  const model = new Writer();
  model.varint(1, 8); // ir_version
  model.string(2, "turnpike"); // producer_name
  model.message(7, graph.finish());
  model.message(
    8,
    new Writer()
      .string(1, "")
      .varint(2, spec.opset ?? 17)
      .finish(),
  );
  return model.finish();
}

function encodeNode(node: NodeSpec): Uint8Array {
  const w = new Writer();
  for (const input of node.inputs) w.string(1, input);
  for (const output of node.outputs) w.string(2, output);
  if (node.name) w.string(3, node.name);
  w.string(4, node.opType);
  for (const [name, value] of Object.entries(node.attributes ?? {})) {
    const a = new Writer().string(1, name);
    if (Array.isArray(value)) {
      for (const v of value) a.varint(8, v); // ints
      a.varint(20, 7); // AttributeType INTS
    } else if (typeof value === "number") {
      a.varint(3, value).varint(20, 2); // i, INT
    } else {
      a.float32(2, value.float).varint(20, 1); // f, FLOAT
    }
    w.message(5, a.finish());
  }
  return w.finish();
}

function encodeInitializer(init: InitializerSpec): Uint8Array {
  const w = new Writer();
  for (const dim of init.dims) w.varint(1, dim);
  w.varint(2, ONNX_ELEM_TYPE[init.datatype]);
  w.string(8, init.name);
  const raw =
    init.datatype === "FP32"
      ? new Uint8Array(new Float32Array(init.values).buffer)
      : new Uint8Array(new BigInt64Array(init.values.map(BigInt)).buffer);
  w.bytes(9, raw); // raw_data, little-endian
  return w.finish();
}

function encodeValueInfo(value: ValueSpec): Uint8Array {
  const shape = new Writer();
  for (const dim of value.shape) {
    const d = new Writer();
    if (typeof dim === "number") d.varint(1, dim);
    else d.string(2, dim);
    shape.message(1, d.finish());
  }
  const tensorType = new Writer().varint(1, ONNX_ELEM_TYPE[value.datatype]).message(2, shape.finish());
  const type = new Writer().message(1, tensorType.finish());
  return new Writer().string(1, value.name).message(2, type.finish()).finish();
}

/** Appends protobuf fields; only what ONNX needs (varints, length-delimited, fixed32 floats). */
class Writer {
  private readonly chunks: Uint8Array[] = [];

  varint(field: number, value: number): this {
    this.key(field, 0);
    this.raw(varintBytes(BigInt.asUintN(64, BigInt(value))));
    return this;
  }
  float32(field: number, value: number): this {
    this.key(field, 5);
    this.raw(new Uint8Array(new Float32Array([value]).buffer));
    return this;
  }
  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }
  bytes(field: number, value: Uint8Array): this {
    this.key(field, 2);
    this.raw(varintBytes(BigInt(value.length)));
    this.raw(value);
    return this;
  }
  message(field: number, value: Uint8Array): this {
    return this.bytes(field, value);
  }
  finish(): Uint8Array {
    return Buffer.concat(this.chunks);
  }
  private key(field: number, wireType: number): void {
    this.raw(varintBytes(BigInt((field << 3) | wireType)));
  }
  private raw(bytes: Uint8Array): void {
    this.chunks.push(bytes);
  }
}

function varintBytes(value: bigint): Uint8Array {
  const out: number[] = [];
  let v = value;
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Uint8Array.from(out);
}

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
