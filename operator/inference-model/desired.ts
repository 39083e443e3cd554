/**
 * Desired state of an InferenceModel: every Kubernetes child it should have, as a pure function
 * of the object and the operator settings (golden-tested in test/operator/inference-model-desired).
 * The RabbitMQ queue is not a Kubernetes object: see queue.ts.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import type { InferenceModel } from "../api/index.js";
import type { OperatorSettings } from "../config.js";
import { CHILD_KINDS, type ChildKind } from "../shared/children.js";
import type { ModelQueuePolicy } from "../../runtime/shared/amqp.js";
import { defaultedSpec } from "./defaults.js";
import { scaledObject } from "./desired-autoscaling.js";
import {
  wantsDisruptionBudget,
  workerDeployment,
  workerDisruptionBudget,
  workerService,
  workerServiceMonitor,
  type ModelFacts,
} from "./desired-worker.js";
import { ownerOf } from "./naming.js";

/**
 * The children, in apply order: the workers first, then what scales them, so a cluster without
 * KEDA still gets running workers before the ScaledObject is refused. The workers' headless
 * Service exists for their ServiceMonitor only (requests arrive over the queue, and nothing else
 * resolves it): without the Prometheus Operator it would be one more write, object and
 * EndpointSlice per model for nobody, so it is not applied (one left from before is pruned). The ScaledObject's
 * TriggerAuthentication is the namespace's (namespaceTriggerAuthentication), applied once per
 * namespace by the reconciler, not a child of each model. Throws a PermanentError
 * when the spec asks for something the runtime cannot do (e.g. an s3:// model).
 */
export function desiredChildren(im: InferenceModel, settings: OperatorSettings): KubernetesObject[] {
  const facts: ModelFacts = {
    owner: ownerOf(im),
    namespace: im.metadata!.namespace,
    spec: defaultedSpec(im.spec!),
    settings,
  };
  return [
    workerDeployment(facts),
    ...(settings.serviceMonitors ? [workerService(facts)] : []),
    ...(wantsDisruptionBudget(facts.spec) ? [workerDisruptionBudget(facts)] : []),
    scaledObject(facts),
    ...(settings.serviceMonitors ? [workerServiceMonitor(facts)] : []),
  ];
}

/** Every kind an InferenceModel may own: what is pruned when no longer desired. */
export function childKinds(settings: OperatorSettings): ChildKind[] {
  return [
    CHILD_KINDS.Deployment,
    CHILD_KINDS.Service,
    CHILD_KINDS.PodDisruptionBudget,
    // None is desired any more (the namespace has one): a model's own from before is pruned.
    CHILD_KINDS.TriggerAuthentication,
    CHILD_KINDS.ScaledObject,
    // Without the Prometheus Operator the kind is not served (and RBAC may not cover it).
    ...(settings.serviceMonitors ? [CHILD_KINDS.ServiceMonitor] : []),
  ];
}

/** The queue policy the spec asks for (defaults applied). */
export function queuePolicy(im: InferenceModel): ModelQueuePolicy {
  const { queue } = defaultedSpec(im.spec!);
  return {
    maxLength: queue.maxLength,
    messageTtlSeconds: queue.messageTtlSeconds,
    deliveryLimit: queue.deliveryLimit,
    deadLetter: queue.deadLetter,
  };
}
