/**
 * Writing a child the operator's cache shows absent with a plain create instead of a server-side
 * apply: the apiserver spends ~25% less CPU on it (bench/write-cost.ts: 2.5-3.2 ms against
 * 3.7-4.3 ms per Deployment or ScaledObject), and most children are written once and never again.
 *
 * A create records its fields under the manager `pepr` with operation Update, which a later apply
 * (manager `pepr`, operation Apply) would share them with: a field the desired state drops would
 * then stay, owned by the Update entry. So before the first apply to a child this operator
 * created, `handOverCreatedFields` relabels that entry as the apply's own (what client-go's
 * csaupgrade does for kubectl's client-side apply), and the apply prunes as if it had created it.
 */
import type { KubernetesObject, V1ManagedFieldsEntry } from "@kubernetes/client-node";
import { fetch, GenericKind, K8s } from "kubernetes-fluent-client";
import { k8sCfg, pathBuilder } from "kubernetes-fluent-client/dist/fluent/utils.js";
import type { ChildKind } from "./children.js";

/** kubernetes-fluent-client's server-side apply manager (fixed there). */
export const APPLY_MANAGER = "pepr";

/** An HTTP failure shaped as kubernetes-fluent-client's, so httpStatusOf and describeError read it. */
function failure(status: number, statusText: string, data: unknown) {
  return Object.assign(new Error(`HTTP ${status} ${statusText}`), { status, statusText, data });
}

/**
 * POSTs `child` as the apply manager, with strict field validation as the apply has; undefined when
 * it exists already (the cache was behind), so the caller applies instead.
 */
export async function createChild(
  kind: ChildKind,
  namespace: string,
  child: KubernetesObject,
): Promise<KubernetesObject | undefined> {
  const { opts, serverUrl } = await k8sCfg("POST" as never);
  const url = pathBuilder(serverUrl.toString(), GenericKind, { kindOverride: kind, namespace }, true);
  url.searchParams.set("fieldManager", APPLY_MANAGER);
  url.searchParams.set("fieldValidation", "Strict");
  const answer = await fetch<KubernetesObject>(url.toString(), {
    ...opts,
    method: "POST",
    headers: { ...opts.headers, "Content-Type": "application/json" },
    body: JSON.stringify(child),
  });
  if (answer.ok) return answer.data;
  if (answer.status === 409) return undefined;
  throw failure(answer.status, answer.statusText, answer.data);
}

const createdEntry = (entry: V1ManagedFieldsEntry) =>
  entry.manager === APPLY_MANAGER && entry.operation === "Update" && !entry.subresource;

/** The managed fields with the create's entry made the apply's own; undefined when there is none (pure). */
export function handedOver(entries: V1ManagedFieldsEntry[] | undefined): V1ManagedFieldsEntry[] | undefined {
  if (!entries?.some(createdEntry)) return undefined;
  // With an apply entry already there (a relabel that lost a race), two entries of one manager and
  // operation would result: left as it is; the create's entry then keeps sharing its fields.
  if (entries.some((e) => e.manager === APPLY_MANAGER && e.operation === "Apply" && !e.subresource)) {
    return undefined;
  }
  return entries.map((e) => (createdEntry(e) ? { ...e, operation: "Apply" } : e));
}

/**
 * Before applying to `live`: relabels the fields this operator's create recorded as the apply's.
 * The resourceVersion test makes a concurrent writer's entry safe: the relabel then fails and the
 * apply goes ahead (the next one tries again).
 */
export async function handOverCreatedFields(kind: ChildKind, live: KubernetesObject): Promise<void> {
  const entries = handedOver(live.metadata?.managedFields);
  if (!entries) return;
  const { namespace, name, resourceVersion } = live.metadata!;
  await K8s(GenericKind, { kindOverride: kind, namespace, name })
    .Patch([
      { op: "test", path: "/metadata/resourceVersion", value: resourceVersion },
      { op: "replace", path: "/metadata/managedFields", value: entries },
    ])
    .catch(() => undefined);
}
