/**
 * InferenceModel: one ONNX model served by the Turnpike runtime behind its own durable queue,
 * scaled by KEDA on queue depth and token rate. Source of truth for
 * crds/inferencemodels.turnpike.dev.yaml (run `npm run gen:crds` after editing).
 */
import { INFERENCE_MODEL_KIND } from "../shared/names.js";
import {
  ageColumn,
  bool,
  conditions,
  customResourceDefinition,
  dnsLabel,
  int,
  int32,
  list,
  obj,
  observedGeneration,
  positive,
  readyColumn,
  resourceRequirements,
  rootSchema,
  rule,
  str,
  stringMap,
  toleration,
  type Schema,
} from "./common.schema.js";
import { cache } from "./cache.schema.js";
import { model, tokens } from "./model-source.schema.js";
import { EXECUTION_PROVIDERS } from "../../runtime/shared/contracts/index.js";

const batching: Schema = obj(
  "Dynamic batching: a worker collects requests from the queue into one inference call.",
  {
    maxBatchSize: int32("Most requests run together in one inference call.", {
      minimum: 1,
      maximum: 256,
      default: 8,
    }),
    maxDelayMs: int32(
      "Longest time, in milliseconds, the first request of a batch waits for others to join. 0 (the " +
        "default): a request that finds the model idle runs at once, and a batch is what queued while " +
        "the model was busy, so under load batches still fill.",
      { minimum: 0, maximum: 10_000, default: 0 },
    ),
  },
);

const runtime: Schema = obj("How the runtime executes the model.", {
  executionProvider: str(
    "ONNX Runtime execution provider: `cpu`, or `cuda` for NVIDIA GPUs (requires spec.gpu). A `cuda` " +
      "worker whose image or node cannot give it (no CUDA build of onnxruntime-node, no driver or device) " +
      "runs on the CPU and the model reports Degraded with reason ExecutionProviderUnavailable.",
    { enum: [...EXECUTION_PROVIDERS], default: "cpu" },
  ),
  threads: int32("Intra-op threads per replica. Unset: one per CPU the replica requests (at least 1).", {
    minimum: 1,
    maximum: 64,
  }),
  image: str("Container image of the runtime worker. Unset: the image the operator is configured with.", {
    minLength: 1,
    maxLength: 512,
    pattern: "^[^\\s]+$",
  }),
});

const gpu: Schema = obj(
  "GPUs each replica needs. The operator adds them to the replica's resource limits as " +
    "`<resourceName>: <count>`; do not list GPUs in spec.resources.",
  {
    count: int32("GPUs per replica.", { minimum: 1, maximum: 16 }),
    resourceName: str(
      "Extended resource that provides the GPU, e.g. `nvidia.com/gpu` or a MIG profile such as " +
        "`nvidia.com/mig-1g.5gb`.",
      { default: "nvidia.com/gpu", maxLength: 128, pattern: "^nvidia\\.com/[-a-z0-9.]+$" },
    ),
  },
  { required: ["count"] },
);

const placement: Schema = obj("Where replicas may be scheduled.", {
  nodeSelector: stringMap("Node labels a node must carry to run a replica, as in a Pod spec.", {
    maxProperties: 32,
  }),
  tolerations: list("Taints replicas tolerate, as in a Pod spec.", toleration, { maxItems: 16 }),
  priorityClassName: dnsLabel("PriorityClass of the replicas' Pods.", { maxLength: 253 }),
});

const scaling: Schema = obj(
  "Autoscaling with KEDA on queue depth (and optionally token rate). minReplicas 0 scales to zero " +
    "when the queue is empty; the first request wakes a replica.",
  {
    minReplicas: int32("Fewest replicas; 0 allows scale to zero.", { minimum: 0, maximum: 1000, default: 1 }),
    maxReplicas: int32("Most replicas.", { minimum: 1, maximum: 1000, default: 4 }),
    targetQueueDepth: int32(
      "Queued requests per replica the autoscaler aims for (KEDA RabbitMQ scaler, mode QueueLength).",
      { minimum: 1, maximum: 1_000_000, default: 16 },
    ),
    activationQueueDepth: int32(
      "Queue depth above which a model scaled to zero wakes up (KEDA activation threshold).",
      { minimum: 0, maximum: 1_000_000, default: 0 },
    ),
    targetTokensPerSecond: positive(
      "Optional second trigger: tokens per second per replica the autoscaler aims for. Unset: queue " +
        "depth alone drives scaling.",
      1_000_000_000,
    ),
    cooldownSeconds: int32("Seconds without work before scaling back to minReplicas (KEDA cooldownPeriod).", {
      minimum: 0,
      maximum: 86_400,
      default: 300,
    }),
    pollingIntervalSeconds: int32("Seconds between checks of the triggers (KEDA pollingInterval).", {
      minimum: 1,
      maximum: 3600,
      default: 30,
    }),
  },
  {
    "x-kubernetes-validations": [
      rule(
        // Guarded: the apiserver also checks this rule against the bare `default: {}`.
        "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
        "scaling.minReplicas must be less than or equal to scaling.maxReplicas",
      ),
    ],
  },
);

const queue: Schema = obj(
  "Policy of the model's durable RabbitMQ quorum queue, and of each tenant's lane of it (the " +
    "queue that holds that tenant's requests, declared on first use with these arguments).",
  {
    maxLength: positive(
      "Most messages the queue, and each tenant's lane of it, holds; beyond it new requests are " +
        "refused with 503 queue_full (back-pressure, with Retry-After) instead of growing the queue. " +
        "A tenant's own lane being full never refuses other tenants; TenantQuota " +
        "spec.maxQueuedPerModel bounds a tenant below it (429 tenant_backlog_full).",
      100_000_000,
      { default: 10_000 },
    ),
    messageTtlSeconds: int32(
      "Seconds a request may wait in the queue before it expires (and is dead-lettered when enabled).",
      { minimum: 1, maximum: 604_800, default: 3600 },
    ),
    deliveryLimit: int32(
      "Deliveries of one message before it counts as poison (and is dead-lettered when enabled).",
      { minimum: 1, maximum: 100, default: 3 },
    ),
    deadLetter: bool("Route expired and poison messages to the dead-letter queue instead of dropping them.", {
      default: true,
    }),
    retainOnDelete: bool(
      "Keep the queue and its tenant lanes (and any messages in them) when the InferenceModel is " +
        "deleted. Default: deleted.",
      { default: false },
    ),
  },
);

const spec: Schema = obj(
  "Desired state of the InferenceModel.",
  {
    model,
    tokens: { ...tokens, default: {} },
    batching: { ...batching, default: {} },
    runtime: { ...runtime, default: {} },
    resources: resourceRequirements(
      "CPU and memory for each replica (core/v1 ResourceRequirements). Request GPUs with spec.gpu.",
      {
        "x-kubernetes-validations": [
          rule(
            "!has(self.limits) || !self.limits.exists(k, k.startsWith('nvidia.com/'))",
            "request GPUs with spec.gpu, not in spec.resources.limits",
          ),
          rule(
            "!has(self.requests) || !self.requests.exists(k, k.startsWith('nvidia.com/'))",
            "request GPUs with spec.gpu, not in spec.resources.requests",
          ),
        ],
      },
    ),
    gpu,
    placement,
    replicas: int32(
      "Desired replicas, written through the scale subresource by the autoscaler (KEDA) or by " +
        "`kubectl scale`; the operator runs at least scaling.minReplicas. Leave it out of manifests. " +
        "Defaults to 0 because the scale subresource (and so KEDA) refuses a missing field.",
      { minimum: 0, maximum: 1000, default: 0 },
    ),
    scaling: { ...scaling, default: {} },
    queue: { ...queue, default: {} },
    cache,
  },
  {
    required: ["model"],
    "x-kubernetes-validations": [
      rule(
        "!has(self.gpu) || (has(self.runtime) && has(self.runtime.executionProvider) && " +
          "self.runtime.executionProvider == 'cuda')",
        "spec.gpu requires spec.runtime.executionProvider: cuda",
      ),
      rule(
        "has(self.gpu) || !has(self.runtime) || !has(self.runtime.executionProvider) || " +
          "self.runtime.executionProvider != 'cuda'",
        "executionProvider cuda requires spec.gpu with a count of at least 1",
      ),
    ],
  },
);

const status: Schema = obj("Observed state of the InferenceModel, written by the operator.", {
  observedGeneration,
  conditions: conditions(
    "`Ready` (replicas serve requests), `Progressing` (a rollout or scale is under way) and " +
      "`Degraded` (something needs attention; see its message).",
  ),
  replicas: int32("Replicas that exist (scale subresource statusReplicasPath).", { minimum: 0 }),
  readyReplicas: int32("Replicas ready to take requests.", { minimum: 0 }),
  selector: str(
    "Label selector of the replicas' Pods in string form (scale subresource labelSelectorPath), so " +
      "the HPA that KEDA creates can find them.",
    { maxLength: 1024 },
  ),
  queue: obj("The model's request queue.", {
    name: str("Name of the RabbitMQ queue.", { maxLength: 255 }),
    depth: int("Messages waiting in the queue and its tenant lanes when last observed.", { minimum: 0 }),
    deadLetterDepth: int(
      "Messages in the namespace's dead-letter queue when last observed. All models of the " +
        "namespace share that queue, so this counts their dead letters together. Unset when " +
        "spec.queue.deadLetter is false.",
      { minimum: 0 },
    ),
  }),
  endpoint: str("URL of the model's Open Inference Protocol v2 endpoint on the gateway.", {
    maxLength: 2048,
  }),
});

export const inferenceModelCrd = customResourceDefinition({
  names: {
    kind: INFERENCE_MODEL_KIND,
    plural: "inferencemodels",
    singular: "inferencemodel",
    shortNames: ["im"],
  },
  schema: rootSchema(
    "InferenceModel serves one ONNX model asynchronously: requests wait in a durable queue, are " +
      "batched onto autoscaled replicas and are charged to their tenant's TenantQuota in tokens.",
    spec,
    status,
    {
      "x-kubernetes-validations": [
        rule(
          "self.metadata.name.size() <= 52 && !self.metadata.name.contains('.')",
          "InferenceModel names must be at most 52 characters and contain no dots: they also name the " +
            "model's Deployment, Service, ScaledObject and queue",
        ),
      ],
    },
  ),
  printerColumns: [
    readyColumn,
    {
      name: "Replicas",
      type: "integer",
      jsonPath: ".status.replicas",
      description: "Replicas that exist.",
    },
    {
      name: "Queue depth",
      type: "integer",
      jsonPath: ".status.queue.depth",
      description: "Requests waiting in the model's queue.",
    },
    { name: "Task", type: "string", jsonPath: ".spec.model.task", description: "What the model does." },
    {
      name: "Provider",
      type: "string",
      jsonPath: ".spec.runtime.executionProvider",
      description: "ONNX Runtime execution provider.",
      priority: 1,
    },
    {
      name: "Min",
      type: "integer",
      jsonPath: ".spec.scaling.minReplicas",
      description: "Fewest replicas.",
      priority: 1,
    },
    {
      name: "Max",
      type: "integer",
      jsonPath: ".spec.scaling.maxReplicas",
      description: "Most replicas.",
      priority: 1,
    },
    {
      name: "Endpoint",
      type: "string",
      jsonPath: ".status.endpoint",
      description: "Open Inference Protocol v2 endpoint.",
      priority: 1,
    },
    ageColumn,
  ],
  scale: {
    specReplicasPath: ".spec.replicas",
    statusReplicasPath: ".status.replicas",
    labelSelectorPath: ".status.selector",
  },
});
