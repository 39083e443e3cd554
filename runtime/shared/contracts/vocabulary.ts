/**
 * The closed lists operator and runtime must agree on. The CRD schemas (operator/api) take their
 * enums from here and the runtime validates against the same lists; test/api/contract-enums.test.ts
 * fails when crds/*.yaml and these lists disagree.
 */

/** What an InferenceModel's `spec.model.task` may say. */
export const TASKS = [
  "ocr-recognition",
  "ocr-detection",
  "ocr-direction",
  "text-embedding",
  "voice-activity",
  "generic",
  "text-generation",
] as const;
export type Task = (typeof TASKS)[number];

/** How tokens of a request are counted (`spec.tokens.mode`). */
export const TOKEN_MODES = ["characters", "tokenizer", "fixed"] as const;

/**
 * Model file formats an InferenceModel may declare (`spec.model.format`): `onnx` runs in
 * onnxruntime-node; `gguf` (task text-generation) in node-llama-cpp.
 */
export const MODEL_FORMATS = ["onnx", "gguf"] as const;

/** Where a model runs (`spec.executionProvider`). */
export const EXECUTION_PROVIDERS = ["cpu", "cuda"] as const;

/**
 * Status of a request. `queued` and `running` live in the gateway's Redis marker; the final ones
 * (`succeeded`, `failed`, `cancelled`) are the PostgreSQL record's (its CHECK constraint lists the
 * same values, see runtime/collector/db/migrations).
 */
export const REQUEST_STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"] as const;
export type RequestStatus = (typeof REQUEST_STATUSES)[number];

/** The statuses a request ends with (what a result message and a record can say). */
export const FINAL_REQUEST_STATUSES = ["succeeded", "failed", "cancelled"] as const;
export type FinalRequestStatus = (typeof FINAL_REQUEST_STATUSES)[number];

/** TenantQuota `spec.priority`. */
export const TENANT_PRIORITIES = ["low", "normal", "high"] as const;

/** URI schemes a model or tokenizer may be loaded from. */
export const MODEL_URI_SCHEMES = ["npm", "file", "pvc", "s3", "https"] as const;

/** Processors this runtime's workers run inline (runtime/worker/processors registers exactly these). */
export const BUILTIN_PROCESSORS = [
  "image-to-tensor",
  "ctc-decode",
  "softmax-argmax",
  "tokenize",
  "mean-pool",
] as const;
/** Name of a built-in processor. */
export type BuiltinProcessor = (typeof BUILTIN_PROCESSORS)[number];

/**
 * Processors a Pipeline step may name (the CRD enum): the built-in ones and those not built yet;
 * a pipeline naming one this runtime lacks is refused with a clear condition.
 */
export const PROCESSORS = [...BUILTIN_PROCESSORS, "detect-crop"] as const;
export type ProcessorName = (typeof PROCESSORS)[number];

/** The Open Inference Protocol v2 datatypes Turnpike carries on its queues. */
export const DATATYPES = [
  "BOOL",
  "UINT8",
  "INT8",
  "INT32",
  "INT64",
  "FP16",
  "FP32",
  "FP64",
  "BYTES",
] as const;
/**
 * Open Inference Protocol v2 tensor datatypes an InferenceModel may declare: the carried ones and
 * the wider integer types, which the runtime does not carry yet (the runtime config then leaves
 * that model's declared tensors out).
 */
export const TENSOR_DATATYPES = [...DATATYPES, "UINT16", "UINT32", "UINT64", "INT16"] as const;
export type Datatype = (typeof DATATYPES)[number];
