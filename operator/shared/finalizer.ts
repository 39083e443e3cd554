/**
 * The operator's own finalizer, added and removed with JSON patches on metadata.finalizers only.
 * (Pepr's Finalize() needs its mutating webhook, and kubernetes-fluent-client's Finalize re-applies
 * the whole object with force, which would take ownership of fields users or ArgoCD manage.)
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { K8s, type GenericClass } from "kubernetes-fluent-client";
import { FINALIZER } from "./labels.js";

function target<T extends GenericClass>(model: T, object: KubernetesObject) {
  return K8s(model, { namespace: object.metadata!.namespace, name: object.metadata!.name });
}

/** Adds the finalizer if missing; returns the patched object, or undefined when it was there. */
export async function ensureFinalizer<T extends GenericClass>(
  model: T,
  object: KubernetesObject,
): Promise<KubernetesObject | undefined> {
  const finalizers = object.metadata?.finalizers;
  if (finalizers?.includes(FINALIZER)) return undefined;
  const ops = finalizers
    ? [
        { op: "test" as const, path: "/metadata/finalizers", value: finalizers },
        { op: "add" as const, path: "/metadata/finalizers/-", value: FINALIZER },
      ]
    : [{ op: "add" as const, path: "/metadata/finalizers", value: [FINALIZER] }];
  return (await target(model, object).Patch(ops)) as KubernetesObject;
}

/** Removes the finalizer if present; returns whether it wrote. */
export async function removeFinalizer<T extends GenericClass>(model: T, object: KubernetesObject) {
  const finalizers = object.metadata?.finalizers ?? [];
  const index = finalizers.indexOf(FINALIZER);
  if (index < 0) return false;
  // The test op makes a concurrent change of the list fail (and retry) instead of removing another's entry.
  await target(model, object).Patch([
    { op: "test", path: `/metadata/finalizers/${index}`, value: FINALIZER },
    { op: "remove", path: `/metadata/finalizers/${index}` },
  ]);
  return true;
}

/** Whether the object is being deleted and waits for this operator's cleanup. */
export function isBeingDeleted(object: KubernetesObject): boolean {
  return Boolean(object.metadata?.deletionTimestamp);
}
