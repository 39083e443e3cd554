/**
 * Tiny ONNX graphs the project generates itself (never committed as binaries): unit tests use them,
 * and the `echo` model measures the system's own overhead in benchmarks (it does no real work).
 *
 * | name          | input                     | output                          |
 * |---------------|---------------------------|---------------------------------|
 * | echo          | x FP32 [batch, n]         | y = x                           |
 * | add           | x FP32 [batch, d]         | y = x + [1, 2, 3, 4] (d must be 4, else a runtime error) |
 * | echo-fixed    | x FP32 [1, 4]             | y = x (batch dimension fixed: never batched) |
 * | logits        | x FP32 [batch, 3]         | logits = x * 2 (raw scores for softmax-argmax)  |
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodeModel, type GraphSpec } from "./onnx-proto.js";

const TINY_GRAPHS = {
  echo: {
    name: "echo",
    inputs: [{ name: "x", datatype: "FP32", shape: ["batch", "n"] }],
    outputs: [{ name: "y", datatype: "FP32", shape: ["batch", "n"] }],
    nodes: [{ opType: "Identity", inputs: ["x"], outputs: ["y"] }],
  },
  add: {
    name: "add",
    inputs: [{ name: "x", datatype: "FP32", shape: ["batch", "d"] }],
    outputs: [{ name: "y", datatype: "FP32", shape: ["batch", 4] }],
    nodes: [{ opType: "Add", inputs: ["x", "bias"], outputs: ["y"] }],
    initializers: [{ name: "bias", datatype: "FP32", dims: [4], values: [1, 2, 3, 4] }],
  },
  "echo-fixed": {
    name: "echo_fixed",
    inputs: [{ name: "x", datatype: "FP32", shape: [1, 4] }],
    outputs: [{ name: "y", datatype: "FP32", shape: [1, 4] }],
    nodes: [{ opType: "Identity", inputs: ["x"], outputs: ["y"] }],
  },
  logits: {
    name: "logits",
    inputs: [{ name: "x", datatype: "FP32", shape: ["batch", 3] }],
    outputs: [{ name: "logits", datatype: "FP32", shape: ["batch", 3] }],
    nodes: [{ opType: "Mul", inputs: ["x", "two"], outputs: ["logits"] }],
    initializers: [{ name: "two", datatype: "FP32", dims: [], values: [2] }],
  },
} satisfies Record<string, GraphSpec>;

/** Names of the tiny generated models. */
export type TinyModelName = keyof typeof TINY_GRAPHS;
/** Every tiny model name, in table order. */
export const TINY_MODEL_NAMES = Object.keys(TINY_GRAPHS) as TinyModelName[];

/** ONNX bytes of one tiny model. */
export function tinyModel(name: TinyModelName): Uint8Array {
  return encodeModel(TINY_GRAPHS[name]);
}

/** Writes every tiny model as `<dir>/<name>.onnx`; returns the paths by name. */
export function writeTinyModels(dir: string): Record<TinyModelName, string> {
  mkdirSync(dir, { recursive: true });
  const paths = {} as Record<TinyModelName, string>;
  for (const name of TINY_MODEL_NAMES) {
    const path = join(dir, `${name}.onnx`);
    writeFileSync(path, tinyModel(name));
    paths[name] = path;
  }
  return paths;
}
