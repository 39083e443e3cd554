/**
 * The runtime config of one namespace, derived from its InferenceModels, Pipelines and
 * TenantQuotas (pure). The runtime reads it from the ConfigMap `turnpike-runtime` (key
 * `runtime.json`, or `runtime.json.gz` when large: config-map-data.ts); its contract is
 * runtime/shared/contracts/runtime-config.ts.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import type { InferenceModel, Pipeline, TenantQuota } from "../api/index.js";
import {
  DATATYPES,
  pipelineGaps,
  pipelineConfigSchema,
  TENANT_PRIORITY,
  type RuntimeConfig,
  type RuntimeConfigInput,
} from "../../runtime/shared/contracts/index.js";
import { PIPELINE_KIND, RUNTIME_CONFIG_MAP, TENANT_QUOTA_KIND } from "../shared/names.js";
import { orderedSteps, type StepInput } from "../shared/pipeline-steps.js";
import { LABELS } from "../shared/labels.js";
import { DEFAULT_QUEUE_POLICY } from "../../runtime/shared/amqp.js";
import { cacheSettings } from "./cache-settings.js";
import { runtimeConfigData } from "./config-map-data.js";

type ModelInput = NonNullable<RuntimeConfigInput["models"]>[number];
type PipelineInput = NonNullable<RuntimeConfigInput["pipelines"]>[number];
type TenantInput = NonNullable<RuntimeConfigInput["tenants"]>[number];
type TensorInput = NonNullable<ModelInput["inputs"]>[number];

/** An object left out of the config, and why (logged by the renderer). */
export interface Skipped {
  kind: string;
  name: string;
  reason: string;
}

export interface DesiredRuntimeConfig {
  config: RuntimeConfigInput;
  skipped: Skipped[];
  /** Whether the namespace holds no live Turnpike object (the ConfigMap can go). */
  empty: boolean;
}

const live = (o: KubernetesObject) => !o.metadata?.deletionTimestamp;
const byName = (a: KubernetesObject, b: KubernetesObject) =>
  (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? "");

/**
 * Renders the config of `namespace` (the prefix). Objects being deleted are left out; a pipeline
 * whose step models do not all exist is left out (a shadow whose model is missing is dropped), so
 * the result always passes the runtime's cross-reference checks.
 */
export function desiredRuntimeConfig(
  namespace: string,
  models: readonly InferenceModel[],
  pipelines: readonly Pipeline[],
  tenants: readonly TenantQuota[],
): DesiredRuntimeConfig {
  const skipped: Skipped[] = [];
  const liveModels = models.filter(live).sort(byName);
  const modelNames = new Set(liveModels.map((m) => m.metadata!.name!));

  const pipelineConfigs: PipelineInput[] = [];
  for (const pipeline of pipelines.filter(live).sort(byName)) {
    const name = pipeline.metadata!.name!;
    const spec = pipeline.spec!;
    // The apiserver accepts any DNS subdomain as a name; the runtime routes only DNS labels. Left
    // in, such a name would make the whole namespace's config invalid, so it is left out instead.
    if (!pipelineConfigSchema.shape.name.safeParse(name).success) {
      skipped.push({
        kind: PIPELINE_KIND,
        name,
        reason: "the name must be a DNS label (at most 63 characters, no dots)",
      });
      continue;
    }
    // Requests name their target; a model of the same name takes them all (routeFor looks there first).
    if (modelNames.has(name)) {
      skipped.push({ kind: PIPELINE_KIND, name, reason: `InferenceModel ${name} has the same name` });
      continue;
    }
    const missing = spec.steps.filter((s) => s.model && !modelNames.has(s.model)).map((s) => s.model!);
    if (missing.length > 0) {
      skipped.push({
        kind: PIPELINE_KIND,
        name,
        reason: `missing InferenceModel(s) ${unique(missing).join(", ")}`,
      });
      continue;
    }
    let steps: StepInput[];
    try {
      steps = orderedSteps(spec.steps);
    } catch (error) {
      skipped.push({ kind: PIPELINE_KIND, name, reason: (error as Error).message });
      continue;
    }
    // Routed, such a pipeline would run as a chain and feed a step the wrong tensors.
    const { blocking } = pipelineGaps({ steps });
    if (blocking.length > 0) {
      skipped.push({ kind: PIPELINE_KIND, name, reason: blocking.join("; ") });
      continue;
    }
    const shadow =
      spec.shadow && modelNames.has(spec.shadow.model)
        ? { step: spec.shadow.step, model: spec.shadow.model, percent: spec.shadow.percent ?? 100 }
        : undefined;
    if (spec.shadow && !shadow) {
      skipped.push({ kind: PIPELINE_KIND, name, reason: `shadow model ${spec.shadow.model} is missing` });
    }
    pipelineConfigs.push({ name, ...versionOf(pipeline), steps, ...(shadow ? { shadow } : {}) });
  }

  // One TenantQuota per tenant: the oldest claims it (the reconciler reports the others).
  const tenantConfigs = new Map<string, TenantInput>();
  for (const quota of tenants.filter(live).sort(oldestFirst)) {
    const spec = quota.spec!;
    if (tenantConfigs.has(spec.tenant)) {
      skipped.push({
        kind: TENANT_QUOTA_KIND,
        name: quota.metadata!.name!,
        reason: `tenant ${spec.tenant} taken`,
      });
      continue;
    }
    tenantConfigs.set(spec.tenant, {
      name: spec.tenant,
      models: [...(spec.models ?? [])].sort(),
      priority: TENANT_PRIORITY[(spec.priority ?? "normal") as keyof typeof TENANT_PRIORITY],
      weight: spec.weight ?? 1,
      ...(spec.maxQueuedPerModel !== undefined ? { maxQueuedPerModel: spec.maxQueuedPerModel } : {}),
      suspended: spec.suspend ?? false,
    });
  }

  const config: RuntimeConfigInput = {
    prefix: namespace,
    models: liveModels.map(modelConfig),
    pipelines: pipelineConfigs,
    tenants: [...tenantConfigs.values()].sort((a, b) => a.name.localeCompare(b.name)),
  };
  // The ConfigMap exists while any Turnpike object does (even a pipeline that cannot run yet).
  const empty = liveModels.length + pipelines.filter(live).length + tenantConfigs.size === 0;
  return { config, skipped, empty };
}

/**
 * The ConfigMap carrying a validated config (pure); stable JSON, so equal configs render equal.
 * Throws RuntimeConfigTooLargeError when even gzipped it does not fit.
 */
export function runtimeConfigMap(namespace: string, config: RuntimeConfig): RuntimeConfigMap {
  const { data, binaryData } = runtimeConfigData(config);
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: RUNTIME_CONFIG_MAP,
      namespace,
      labels: {
        [LABELS.managedBy]: "turnpike",
        [LABELS.partOf]: "turnpike",
        [LABELS.component]: "runtime-config",
      },
    },
    // Exactly one of the two, so a switch between them replaces the other key (server-side apply).
    ...(data ? { data } : { binaryData }),
  };
}

export interface RuntimeConfigMap {
  apiVersion: "v1";
  kind: "ConfigMap";
  metadata: { name: string; namespace: string; labels: Record<string, string> };
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

function oldestFirst(a: KubernetesObject, b: KubernetesObject): number {
  const ta = String(a.metadata?.creationTimestamp ?? "");
  const tb = String(b.metadata?.creationTimestamp ?? "");
  return ta === tb ? byName(a, b) : ta < tb ? -1 : 1;
}

function unique<T>(values: T[]): T[] {
  return [...new Set(values)];
}

function modelConfig(model: InferenceModel): ModelInput {
  const spec = model.spec!;
  const tokens = spec.tokens ?? {};
  const mode = (tokens.mode ?? "characters") as "characters" | "tokenizer" | "fixed";
  const perRequest = tokens.perRequest ?? 0;
  const inputs = tensors(spec.model.inputs);
  const outputs = tensors(spec.model.outputs);
  const cache = cacheSettings(model);
  return {
    name: model.metadata!.name!,
    ...versionOf(model),
    uri: spec.model.uri,
    // Only when not the default, so configs of ONNX models stay as they were.
    ...(spec.model.format === "gguf" ? { format: "gguf" as const } : {}),
    task: (spec.model.task ?? "generic") as ModelInput["task"],
    ...(inputs ? { inputs } : {}),
    ...(outputs ? { outputs } : {}),
    tokens: {
      mode,
      maxOutputTokens: tokens.maxOutputTokens ?? 256,
      // The runtime charges unitsPerRequest (>= 1) in fixed and tokenizer modes.
      unitsPerRequest: Math.max(1, perRequest),
      charactersPerToken: tokens.charactersPerToken ?? 4,
      perRequest,
      ...(mode === "tokenizer" && tokens.tokenizer ? { tokenizer: { uri: tokens.tokenizer.uri } } : {}),
    },
    batching: {
      maxBatchSize: spec.batching?.maxBatchSize ?? 8,
      maxDelayMs: spec.batching?.maxDelayMs ?? 0,
    },
    executionProvider: (spec.runtime?.executionProvider ?? "cpu") as "cpu" | "cuda",
    threads: spec.runtime?.threads ?? threadsFor(spec.resources),
    deliveryLimit: spec.queue?.deliveryLimit ?? 3,
    queue: {
      maxLength: spec.queue?.maxLength ?? DEFAULT_QUEUE_POLICY.maxLength,
      messageTtlSeconds: spec.queue?.messageTtlSeconds ?? DEFAULT_QUEUE_POLICY.messageTtlSeconds,
      deadLetter: spec.queue?.deadLetter ?? DEFAULT_QUEUE_POLICY.deadLetter,
    },
    ...(cache ? { cache } : {}),
  };
}

/** The version OIP clients address: the resource's generation (absent before the apiserver set one). */
function versionOf(resource: KubernetesObject): { version?: string } {
  const generation = resource.metadata?.generation;
  return generation ? { version: String(generation) } : {};
}

/**
 * Tensor metadata for the runtime, or undefined (the runtime then reads it from the ONNX graph)
 * when unset or when a tensor uses a datatype the runtime does not carry.
 */
function tensors(
  list: ReadonlyArray<{ name: string; datatype: string; shape?: number[] }> | undefined,
): TensorInput[] | undefined {
  if (!list || list.length === 0) return undefined;
  const known = new Set<string>(DATATYPES);
  if (!list.every((t) => known.has(t.datatype))) return undefined;
  return list.map((t) => ({
    name: t.name,
    datatype: t.datatype as TensorInput["datatype"],
    shape: t.shape ?? [],
  }));
}

/** One intra-op thread per whole CPU requested (requests default to limits), 1..64. */
export function threadsFor(resources?: {
  requests?: Record<string, number | string>;
  limits?: Record<string, number | string>;
}): number {
  const cpu = resources?.requests?.cpu ?? resources?.limits?.cpu;
  const cores = cpu === undefined ? 1 : cpuCores(cpu);
  return Math.min(64, Math.max(1, Math.floor(cores)));
}

function cpuCores(quantity: number | string): number {
  if (typeof quantity === "number") return quantity;
  const match = /^(\d+(?:\.\d+)?)(m?)$/.exec(quantity.trim());
  if (!match) return 1;
  const value = Number(match[1]);
  return match[2] === "m" ? value / 1000 : value;
}
