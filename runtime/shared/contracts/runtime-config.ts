/**
 * The runtime config contract: the operator renders it into a ConfigMap (key `runtime.json`, or
 * gzipped under `runtime.json.gz` when large), every runtime process reads it as a file
 * (runtime/shared/runtime-config-file.ts) and reloads it on change.
 * It never needs the Kubernetes API.
 */
import { z } from "zod";
import {
  DATATYPES,
  EXECUTION_PROVIDERS,
  MODEL_FORMATS,
  TASKS,
  TENANT_PRIORITIES,
  TOKEN_MODES,
} from "./vocabulary.js";
import { modelCacheSchema } from "./result-cache.js";

export const RUNTIME_CONFIG_KEY = "runtime.json";
/** The key (and file name) of the gzipped compact JSON a large namespace's config is carried as. */
export const RUNTIME_CONFIG_GZIP_KEY = `${RUNTIME_CONFIG_KEY}.gz`;

const name = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a lowercase DNS label")
  .max(63);

export const tensorSpecSchema = z.object({
  name: z.string().min(1),
  datatype: z.enum(DATATYPES),
  /** -1 marks a dynamic dimension. */
  shape: z.array(z.number().int().min(-1)),
});

/**
 * The version Open Inference Protocol clients address (`/v2/models/{name}/versions/{version}`): the
 * operator renders the resource's metadata.generation; "1" when a hand-written config has none.
 */
const version = z
  .string()
  .regex(/^[0-9A-Za-z][-0-9A-Za-z._]{0,62}$/, "must be 1-63 letters, digits, '.', '_' or '-'")
  .optional();

export const modelConfigSchema = z.object({
  name,
  version,
  /** Where the ONNX file is: npm://package/path, file:///abs/path. */
  uri: z.string().min(1),
  /** Engine that runs the file: onnxruntime-node (`onnx`) or node-llama-cpp (`gguf`). */
  format: z.enum(MODEL_FORMATS).default("onnx"),
  task: z.enum(TASKS).default("generic"),
  /** Tensor metadata used to validate requests; read from the model itself when omitted. */
  inputs: z.array(tensorSpecSchema).optional(),
  outputs: z.array(tensorSpecSchema).optional(),
  tokens: z
    .object({
      mode: z.enum(TOKEN_MODES).default("fixed"),
      /** Output tokens reserved per request before the real count is known. */
      maxOutputTokens: z.number().int().positive().default(256),
      /** Tokens charged per request in `fixed` mode. */
      unitsPerRequest: z.number().int().positive().default(1),
      /**
       * `characters` mode: characters per token, rounded up (InferenceModel tokens.charactersPerToken).
       * Default 1 (one token per character); the operator always renders the spec's value.
       */
      charactersPerToken: z.number().int().min(1).max(16).default(1),
      /** Flat tokens every request costs on top of what the mode counts (tokens.perRequest). */
      perRequest: z.number().int().min(0).default(0),
      /** `tokenizer` mode: where the tokenizer (a Hugging Face tokenizer.json) comes from. */
      tokenizer: z.object({ uri: z.string().min(1) }).optional(),
    })
    .prefault({}),
  batching: z
    .object({
      maxBatchSize: z.number().int().min(1).max(256).default(8),
      maxDelayMs: z.number().int().min(0).max(10_000).default(0),
    })
    .prefault({}),
  executionProvider: z.enum(EXECUTION_PROVIDERS).default("cpu"),
  threads: z.number().int().min(1).max(64).default(2),
  /** Delivery attempts before a message is dead-lettered (quorum queue delivery-limit). */
  deliveryLimit: z.number().int().min(1).default(3),
  /**
   * The rest of the model queue's policy (InferenceModel spec.queue), which a tenant's lane of the
   * model is declared with by whichever process needs it first (runtime/shared/lanes.ts).
   */
  queue: z
    .object({
      maxLength: z.number().int().min(1).default(10_000),
      messageTtlSeconds: z.number().int().min(1).default(3600),
      deadLetter: z.boolean().default(true),
    })
    .prefault({}),
  /** The result cache (InferenceModel spec.cache); absent when it is off. */
  cache: modelCacheSchema.optional(),
});

/** The pseudo step name that stands for the pipeline's own request (a step's inputFrom). */
export const REQUEST_INPUT = "request";

export const pipelineStepSchema = z
  .object({
    name,
    model: name.optional(),
    processor: z.string().optional(),
    /** Processor settings (strings), e.g. `height: "48"`; only on processor steps. */
    parameters: z.record(z.string(), z.string()).optional(),
    /**
     * Steps that must finish first, always explicit (the operator resolves the CRD's "unset means
     * the previous step"); `[]` starts on the request. Steps are listed in topological order.
     */
    dependsOn: z.array(name).optional(),
    /** Whose outputs the step consumes: a dependency or `request`; unset: all dependencies merged. */
    inputFrom: name.optional(),
    /** Overrides the model's tokens.maxOutputTokens for this step when reserving. */
    maxOutputTokens: z.number().int().positive().optional(),
  })
  .refine((s) => (s.model === undefined) !== (s.processor === undefined), {
    message: "a step runs exactly one of model or processor",
  });

export const pipelineConfigSchema = z.object({
  name,
  version,
  steps: z.array(pipelineStepSchema).min(1),
  /** Mirror a share of one model step's inputs to another model; outputs recorded, never returned. */
  shadow: z
    .object({
      step: name,
      model: name,
      percent: z.number().int().min(1).max(100).default(100),
    })
    .optional(),
});

/** TenantQuota spec.priority (low|normal|high) as the numeric priority the runtime uses. */
export const TENANT_PRIORITY = { low: 1, normal: 5, high: 9 } as const satisfies Record<
  (typeof TENANT_PRIORITIES)[number],
  number
>;

export const tenantConfigSchema = z.object({
  name,
  /** Models and pipelines the tenant may call; empty means all. */
  models: z.array(name).default([]),
  priority: z.number().int().min(0).max(10).default(5),
  /** TenantQuota spec.weight: the tenant's share of a model among tenants of its priority. */
  weight: z.number().int().min(1).max(1000).default(1),
  /** TenantQuota spec.maxQueuedPerModel: requests waiting or running per model or pipeline (429 above). */
  maxQueuedPerModel: z.number().int().min(1).optional(),
  /** TenantQuota spec.suspend: refuse every request of the tenant (403), keys and usage kept. */
  suspended: z.boolean().default(false),
});

export const runtimeConfigSchema = z
  .object({
    /** Installation prefix (normally the namespace): scopes queue names and Redis keys. */
    prefix: z.string().regex(/^[a-z0-9][-a-z0-9.]*$/, "must be lowercase letters, digits, '-' or '.'"),
    models: z.array(modelConfigSchema).default([]),
    pipelines: z.array(pipelineConfigSchema).default([]),
    tenants: z.array(tenantConfigSchema).default([]),
  })
  .superRefine((config, ctx) => {
    const models = new Set(config.models.map((m) => m.name));
    for (const pipeline of config.pipelines) {
      for (const step of pipeline.steps) {
        if (step.model && !models.has(step.model)) {
          ctx.addIssue({
            code: "custom",
            message: `pipeline ${pipeline.name} step ${step.name} uses unknown model ${step.model}`,
          });
        }
      }
      if (pipeline.shadow && !models.has(pipeline.shadow.model)) {
        ctx.addIssue({
          code: "custom",
          message: `pipeline ${pipeline.name} shadows to unknown model ${pipeline.shadow.model}`,
        });
      }
    }
  });

export type TensorSpec = z.infer<typeof tensorSpecSchema>;
export type ModelConfig = z.infer<typeof modelConfigSchema>;
export type PipelineConfig = z.infer<typeof pipelineConfigSchema>;
export type TenantConfig = z.infer<typeof tenantConfigSchema>;
export type RuntimeConfig = z.infer<typeof runtimeConfigSchema>;
export type RuntimeConfigInput = z.input<typeof runtimeConfigSchema>;

/** Validates a parsed config, throwing one readable error that lists every problem. */
export function parseRuntimeConfig(raw: unknown, source = "runtime config"): RuntimeConfig {
  const result = runtimeConfigSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `  - ${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new Error(`invalid ${source}:\n${problems.join("\n")}`);
  }
  return result.data;
}

/** Finds a model or pipeline by name; the route a request of that target takes. */
export function routeFor(config: RuntimeConfig, target: string) {
  const model = config.models.find((m) => m.name === target);
  if (model) {
    return { kind: "model" as const, route: [{ step: model.name, model: model.name }] };
  }
  const pipeline = config.pipelines.find((p) => p.name === target);
  if (pipeline) {
    return {
      kind: "pipeline" as const,
      route: pipeline.steps.map((s) => ({ step: s.name, model: s.model, processor: s.processor })),
    };
  }
  return undefined;
}
