/**
 * How reconcilers read the children they own. `apiChildReader` GETs and lists from the apiserver on
 * every call (tests that call a reconciler directly, and the fallback of the cache); the operator
 * itself reads from `WatchCache` (watch-cache.ts), which answers the same questions from watches.
 * (The runtime-config renderer reads the operator's own kinds through the same interface.)
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { GenericKind, K8s } from "kubernetes-fluent-client";
import type { ChildKind } from "./children.js";
import { httpStatusOf } from "./errors.js";

export interface ChildReader {
  /** One child; undefined when it does not exist. */
  get(kind: ChildKind, namespace: string, name: string): Promise<KubernetesObject | undefined>;
  /** The children of a kind in `namespace` that carry every label of `selector`. */
  list(kind: ChildKind, namespace: string, selector: Record<string, string>): Promise<KubernetesObject[]>;
  /** Told after a successful apply (with what the apiserver answered), so the next read sees it. */
  applied(kind: ChildKind, object: KubernetesObject): void;
  /** Told after a successful delete. */
  deleted(kind: ChildKind, namespace: string, name: string): void;
  /** Whether changes of `kind` in `namespace` arrive as events now (a synced watch): no need to poll. */
  watches?(kind: ChildKind, namespace: string): boolean;
  /** Whether `object` is the version the operator itself last wrote (an echo of its own write). */
  isOwnWrite?(kind: ChildKind, object: KubernetesObject): boolean;
}

export function childClient(kind: ChildKind) {
  return K8s(GenericKind, { kindOverride: kind });
}

/** Reads straight from the apiserver. */
export const apiChildReader: ChildReader = {
  async get(kind, namespace, name) {
    try {
      return await childClient(kind).InNamespace(namespace).Get(name);
    } catch (error) {
      if (httpStatusOf(error) === 404) return undefined;
      throw new Error(`reading ${kind.kind}/${name}`, { cause: error });
    }
  },
  async list(kind, namespace, selector) {
    let query = childClient(kind).InNamespace(namespace);
    for (const [key, value] of Object.entries(selector)) query = query.WithLabel(key, value);
    try {
      return (await query.Get()).items;
    } catch (error) {
      // A kind whose CRD is not installed (ServiceMonitor without Prometheus Operator) has none.
      if (httpStatusOf(error) === 404) return [];
      throw new Error(`listing ${kind.plural}`, { cause: error });
    }
  },
  applied: () => undefined,
  deleted: () => undefined,
};
