/**
 * Names, labels and references shared by the InferenceModel's desired state, reconciler and
 * status: one place decides what a model's children are called and how its pods are selected.
 * Namespace-wide names are in operator/shared/names.ts.
 */
import { API_VERSION, type InferenceModel } from "../api/index.js";
import { names } from "../../runtime/shared/contracts/index.js";
import { LABELS, ownerSelector, type OwnerRef } from "../shared/labels.js";
import { INFERENCE_MODEL_KIND } from "../shared/names.js";

/** The worker's one port: /metrics, /healthz, /readyz. */
export const HTTP_PORT = 8080;

/** The ownership facts children record about their InferenceModel. */
export function ownerOf(im: InferenceModel): OwnerRef {
  const metadata = im.metadata ?? {};
  return {
    apiVersion: API_VERSION,
    kind: INFERENCE_MODEL_KIND,
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
  return { ...ownerSelector({ kind: INFERENCE_MODEL_KIND, name }), [LABELS.component]: "worker" };
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

/** Regex of the model's queue and its tenant lanes, as KEDA and the status read them. */
export function modelQueuePattern(namespace: string, name: string): string {
  return names(namespace).modelQueuePattern(name);
}

/** The most queues (the model's own plus tenant lanes) one management API page returns: 500. */
export const MAX_QUEUES_PER_MODEL = 500;

/**
 * The namespace's one TriggerAuthentication that gives KEDA the management API URL (every model's
 * ScaledObject refers to it). No model's former own one (`<model>-rabbitmq`) can have this name.
 */
export const TRIGGER_AUTHENTICATION = "turnpike-rabbitmq-management";
