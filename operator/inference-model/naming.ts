/**
 * Names, labels and references shared by the InferenceModel's desired state, reconciler and
 * status: one place decides what a model's children are called and how its pods are selected.
 */
import { API_VERSION, type InferenceModel } from "../api/index.js";
import { RUNTIME_CONFIG_KEY } from "../../runtime/shared/contracts/index.js";
import { names } from "../../runtime/shared/contracts/index.js";
import { LABELS, ownerSelector, type OwnerRef } from "../shared/labels.js";

export const KIND = "InferenceModel";

/** The runtime ConfigMap the runtime-config reconciler renders in each namespace. */
export const RUNTIME_CONFIG_MAP = "turnpike-runtime";
/** Where workers read it (TURNPIKE_CONFIG); the ConfigMap is mounted as a directory, not subPath, so updates arrive. */
export const RUNTIME_CONFIG_DIR = "/etc/turnpike";
export const RUNTIME_CONFIG_PATH = `${RUNTIME_CONFIG_DIR}/${RUNTIME_CONFIG_KEY}`;

/** Keys of the runtime Secret (settings.runtimeSecret) that children reference; never inlined. */
export const SECRET_KEYS = {
  amqpUrl: "amqp-url",
  redisUrl: "redis-url",
  /** `http(s)://user:password@host:15672[/vhost]`: what KEDA's RabbitMQ scaler reads queue depth from. */
  rabbitmqManagementUrl: "rabbitmq-management-url",
} as const;

/** The worker's one port: /metrics, /healthz, /readyz. */
export const HTTP_PORT = 8080;

/** Where a pvc:// claim is mounted (runtime/shared/models/model-source.ts, PVC_MOUNT_ROOT). */
export const PVC_MOUNT_ROOT = "/models";

/** The ownership facts children record about their InferenceModel. */
export function ownerOf(im: InferenceModel): OwnerRef {
  const metadata = im.metadata ?? {};
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: metadata.name,
    uid: metadata.uid,
    generation: metadata.generation ?? 0,
  };
}

/**
 * Labels of the worker pods, and the Deployment/Service/PDB selector. Stable for the life of the
 * model (a Deployment's selector is immutable) and free of the owner generation, so a scale or
 * spec change never relabels, and never needlessly restarts, running pods.
 */
export function workerSelector(name: string): Record<string, string> {
  return { ...ownerSelector({ kind: KIND, name }), [LABELS.component]: "worker" };
}

/** A label selector in string form (`k=v,k=v`, sorted), as the scale subresource reports it. */
export function selectorString(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((key) => `${key}=${labels[key]}`)
    .join(",");
}

/** The model's RabbitMQ queue; the prefix is the namespace. */
export function modelQueueName(namespace: string, name: string): string {
  return names(namespace).modelQueue(name);
}

/** The TriggerAuthentication that gives KEDA the management API URL. */
export function triggerAuthenticationName(name: string): string {
  return `${name}-rabbitmq`;
}

/** The model's Open Inference Protocol v2 endpoint, relative to the namespace's gateway. */
export function endpointOf(name: string): string {
  return `/v2/models/${name}/infer`;
}
