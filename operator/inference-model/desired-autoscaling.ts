/**
 * KEDA autoscaling of an InferenceModel: a ScaledObject whose target is the InferenceModel itself
 * (through its scale subresource; the reconciler copies spec.replicas to the Deployment), and the
 * namespace's TriggerAuthentication that hands KEDA the RabbitMQ management URL from the runtime
 * Secret: one per namespace (KEDA's pattern for credentials a namespace shares), not one per model,
 * which was one more write and one more stored object per model.
 *
 * Field semantics checked against KEDA v2.21's own source (pkg/scalers/rabbitmq_scaler.go,
 * prometheus_scaler.go) and CRDs (config/crd/bases), which the tests install.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import type { OperatorSettings } from "../config.js";
import { childLabels, LABELS, ownerReference } from "../shared/labels.js";
import type { ModelFacts } from "./desired-worker.js";
import { INFERENCE_MODEL_KIND, SECRET_KEYS } from "../shared/names.js";
import { MAX_QUEUES_PER_MODEL, modelQueuePattern, TRIGGER_AUTHENTICATION } from "./naming.js";
import { API_VERSION } from "../api/index.js";

/** The HPA refuses a scale-down stabilization window above one hour (KEDA issue #4976). */
const MAX_STABILIZATION_SECONDS = 3600;

function metadata(facts: ModelFacts, name: string) {
  return {
    name,
    namespace: facts.namespace,
    labels: childLabels(facts.owner, "autoscaler"),
    ownerReferences: [ownerReference(facts.owner)],
  };
}

/**
 * Gives KEDA's RabbitMQ scaler its `host` (the management API URL, credentials included) from the
 * runtime Secret, for every model of the namespace. It has no owner (it outlives any one model, as
 * the runtime ConfigMap does) and no owner labels, so no model's pruning removes it.
 */
export function namespaceTriggerAuthentication(
  namespace: string,
  settings: Pick<OperatorSettings, "runtimeSecret">,
): KubernetesObject {
  return {
    apiVersion: "keda.sh/v1alpha1",
    kind: "TriggerAuthentication",
    metadata: {
      name: TRIGGER_AUTHENTICATION,
      namespace,
      labels: {
        [LABELS.managedBy]: "turnpike",
        [LABELS.partOf]: "turnpike",
        [LABELS.component]: "autoscaler",
      },
    },
    spec: {
      secretTargetRef: [
        { parameter: "host", name: settings.runtimeSecret, key: SECRET_KEYS.rabbitmqManagementUrl },
      ],
    },
  } as KubernetesObject;
}

/**
 * PromQL for the tokens per second the model's workers produce, summed over its replicas (KEDA's
 * AverageValue divides by the replica count). `role="worker"` keeps the collector's per-request
 * totals of the same counter out; `namespace` keeps same-named models of other namespaces out.
 */
export function tokenRateQuery(namespace: string, name: string): string {
  // An empty result (a model that never ran) reads as 0: KEDA's ignoreNullValues defaults to true.
  return `sum(rate(ml_tokens_processed_total{namespace="${namespace}",model="${name}",role="worker"}[2m]))`;
}

/** The ScaledObject: queue depth always, token rate when a target and a Prometheus are given. */
export function scaledObject(facts: ModelFacts): KubernetesObject {
  const { owner, namespace, spec, settings } = facts;
  const scaling = spec.scaling;
  const triggers: Record<string, unknown>[] = [
    {
      type: "rabbitmq",
      name: "queue-depth",
      metadata: {
        // The management API counts ready AND unacknowledged messages (`messages`), so a replica
        // busy with a batch is never scaled away mid-request; AMQP mode would see only ready ones.
        protocol: "http",
        mode: "QueueLength",
        value: String(scaling.targetQueueDepth),
        activationValue: String(scaling.activationQueueDepth),
        // The model's queue and every tenant lane of it (runtime/shared/lanes.ts), summed: all
        // waiting work counts, whichever tenant it belongs to. RabbitMQ pages at most 500 queues.
        queueName: modelQueuePattern(namespace, owner.name),
        useRegex: "true",
        operation: "sum",
        pageSize: String(MAX_QUEUES_PER_MODEL),
        excludeUnacknowledged: "false",
      },
      authenticationRef: { name: TRIGGER_AUTHENTICATION, kind: "TriggerAuthentication" },
    },
  ];
  if (scaling.targetTokensPerSecond !== undefined && settings.prometheusUrl) {
    triggers.push({
      type: "prometheus",
      name: "token-rate",
      metadata: {
        serverAddress: settings.prometheusUrl,
        query: tokenRateQuery(namespace, owner.name),
        threshold: String(scaling.targetTokensPerSecond),
      },
    });
  }
  return {
    apiVersion: "keda.sh/v1alpha1",
    kind: "ScaledObject",
    metadata: metadata(facts, owner.name),
    spec: {
      // The InferenceModel itself: KEDA's HPA writes its spec.replicas through the scale subresource.
      scaleTargetRef: { apiVersion: API_VERSION, kind: INFERENCE_MODEL_KIND, name: owner.name },
      // Always explicit: KEDA's own default is 0, which would scale a model with minReplicas 1 to zero.
      minReplicaCount: scaling.minReplicas,
      maxReplicaCount: scaling.maxReplicas,
      pollingInterval: scaling.pollingIntervalSeconds,
      // KEDA's cooldown governs 1 -> 0 only ...
      cooldownPeriod: scaling.cooldownSeconds,
      advanced: {
        horizontalPodAutoscalerConfig: {
          behavior: {
            // ... and the HPA's scale-down window governs N -> minReplicas: both follow cooldownSeconds.
            scaleDown: {
              stabilizationWindowSeconds: Math.min(scaling.cooldownSeconds, MAX_STABILIZATION_SECONDS),
            },
          },
        },
      },
      triggers,
    },
  } as KubernetesObject;
}
