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
import { apiChildReader } from "./child-reader.js";
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
  // No answer at all (kubernetes-fluent-client then makes up a 400): retried, not a verdict.
  if (answer.e !== undefined) throw new Error("no answer from the apiserver", { cause: answer.e });
  if (answer.status === 409) return undefined;
  throw failure(answer.status, answer.statusText, answer.data);
}

const createdEntry = (entry: V1ManagedFieldsEntry) =>
  entry.manager === APPLY_MANAGER && entry.operation === "Update" && !entry.subresource;
const appliedEntry = (entry: V1ManagedFieldsEntry) =>
  entry.manager === APPLY_MANAGER && entry.operation === "Apply" && !entry.subresource;

/** The union of two managed-field sets (FieldsV1: nested `f:`/`k:`/`v:`/`i:` keys, `.` leaves). */
export function fieldsUnion(a: unknown, b: unknown): object {
  const left = (a ?? {}) as Record<string, unknown>;
  const right = (b ?? {}) as Record<string, unknown>;
  const merged: Record<string, unknown> = { ...left };
  for (const [key, value] of Object.entries(right)) {
    merged[key] = key in left ? fieldsUnion(left[key], value) : value;
  }
  return merged;
}

/**
 * The managed fields with the create's entry made the apply's own (pure); undefined when there is
 * nothing to hand over. When the apply has an entry already (a relabel that lost a race to another
 * write, after which the apply went ahead), the create's fields join the apply's entry and the
 * create's entry goes: otherwise it would keep sharing those fields, and the apply could never
 * prune them.
 */
export function handedOver(entries: V1ManagedFieldsEntry[] | undefined): V1ManagedFieldsEntry[] | undefined {
  const created = entries?.find(createdEntry);
  if (!entries || !created) return undefined;
  const applied = entries.find(appliedEntry);
  if (!applied) return entries.map((e) => (e === created ? { ...e, operation: "Apply" } : e));
  // Field sets of two API versions do not merge: left as they are (the operator writes one version).
  if (applied.apiVersion !== created.apiVersion) return undefined;
  return entries
    .filter((e) => e !== created)
    .map((e) => (e === applied ? { ...e, fieldsV1: fieldsUnion(applied.fieldsV1, created.fieldsV1) } : e));
}

/**
 * Whether a child carries both the create's entry and the apply's (a hand-over that lost its race):
 * repaired even when the child needs no apply, from what the cache shows (no extra GET).
 */
export function needsFieldRepair(live: KubernetesObject | undefined): boolean {
  const entries = live?.metadata?.managedFields ?? [];
  return entries.some(createdEntry) && entries.some(appliedEntry);
}

/**
 * Before applying to `live` (or to repair it): hands the fields this operator's create recorded
 * over to the apply. The resourceVersion test makes a concurrent writer's entry safe: the patch then
 * fails and the caller goes ahead (a later reconcile repairs it from the cache: needsFieldRepair).
 * Returns the patched child, or undefined when nothing was written.
 */
export async function handOverCreatedFields(
  kind: ChildKind,
  live: KubernetesObject,
): Promise<KubernetesObject | undefined> {
  const cached = live.metadata?.managedFields ?? [];
  if (!cached.some(createdEntry)) return undefined;
  // The watch cache keeps entries without their field sets (watch-cache.ts): the patch below
  // writes whole entries, so it is computed from the child as the apiserver has it now.
  const current = cached.every((entry) => entry.fieldsV1 !== undefined)
    ? live
    : await apiChildReader.get(kind, live.metadata!.namespace!, live.metadata!.name!);
  const entries = handedOver(current?.metadata?.managedFields);
  if (!current || !entries) return undefined;
  const { namespace, name, resourceVersion } = current.metadata!;
  return await K8s(GenericKind, { kindOverride: kind, namespace, name })
    .Patch([
      { op: "test", path: "/metadata/resourceVersion", value: resourceVersion },
      { op: "replace", path: "/metadata/managedFields", value: entries },
    ])
    .catch(() => undefined);
}
