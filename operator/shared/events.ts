/**
 * Warning Events on reconcile failures, deduplicated in memory so a failure retried with backoff
 * emits one Event (with a growing count) rather than one per attempt.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { K8s, kind } from "kubernetes-fluent-client";

const COMPONENT = "turnpike-operator";
const recent = new Map<string, { name: string; count: number; first: string }>();

/** Emits (or bumps) a Warning Event on `object`. Never throws: an Event is best effort. */
export async function warn(object: KubernetesObject, reason: string, message: string): Promise<void> {
  const namespace = object.metadata?.namespace ?? "default";
  const key = `${object.metadata?.uid}/${reason}/${message}`;
  const now = new Date().toISOString();
  const seen = recent.get(key);
  try {
    if (seen) {
      seen.count += 1;
      await K8s(kind.CoreEvent, { namespace, name: seen.name }).Patch([
        { op: "replace", path: "/count", value: seen.count },
        { op: "replace", path: "/lastTimestamp", value: now },
      ]);
      return;
    }
    const name = `${object.metadata?.name}.${Date.now().toString(16)}`;
    await K8s(kind.CoreEvent).Create({
      apiVersion: "v1",
      kind: "Event",
      metadata: { name, namespace },
      involvedObject: {
        apiVersion: object.apiVersion,
        kind: object.kind,
        name: object.metadata?.name,
        namespace,
        uid: object.metadata?.uid,
      },
      reason,
      message: message.slice(0, 1024),
      type: "Warning",
      source: { component: COMPONENT },
      reportingComponent: COMPONENT,
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
    } as never);
    recent.set(key, { name, count: 1, first: now });
    if (recent.size > 5000) recent.delete(recent.keys().next().value!);
  } catch {
    // Events are advisory; a failure to write one must not fail the reconcile.
  }
}
