/**
 * Server-side apply of desired children with skip-if-unchanged (a plain create for one that is
 * absent: child-create.ts), and pruning of children that are no longer desired. Reads go through a
 * ChildReader (the operator's watch caches); writes happen only when the rendered child differs
 * from what the live child was last rendered as (the hash annotation), so a resync makes zero
 * writes.
 */
import { createHash } from "node:crypto";
import type { KubernetesObject } from "@kubernetes/client-node";
import type { GenericKind, GroupVersionKind } from "kubernetes-fluent-client";
import { createChild, handOverCreatedFields, needsFieldRepair } from "./child-create.js";
import { apiChildReader, childClient, type ChildReader } from "./child-reader.js";
import { describeError, httpStatusOf } from "./errors.js";
import { DESIRED_HASH, LABELS } from "./labels.js";

/** A child kind the operator manages, with the plural the API path needs. */
export interface ChildKind extends GroupVersionKind {
  plural: string;
}

export const CHILD_KINDS = {
  ConfigMap: { group: "", version: "v1", kind: "ConfigMap", plural: "configmaps" },
  Service: { group: "", version: "v1", kind: "Service", plural: "services" },
  Deployment: { group: "apps", version: "v1", kind: "Deployment", plural: "deployments" },
  PodDisruptionBudget: {
    group: "policy",
    version: "v1",
    kind: "PodDisruptionBudget",
    plural: "poddisruptionbudgets",
  },
  ScaledObject: { group: "keda.sh", version: "v1alpha1", kind: "ScaledObject", plural: "scaledobjects" },
  TriggerAuthentication: {
    group: "keda.sh",
    version: "v1alpha1",
    kind: "TriggerAuthentication",
    plural: "triggerauthentications",
  },
  ServiceMonitor: {
    group: "monitoring.coreos.com",
    version: "v1",
    kind: "ServiceMonitor",
    plural: "servicemonitors",
  },
} satisfies Record<string, ChildKind>;

/** The operator's own kinds, as the watch cache the runtime config is rendered from needs them. */
export const OWN_KINDS = {
  InferenceModel: {
    group: "turnpike.dev",
    version: "v1alpha1",
    kind: "InferenceModel",
    plural: "inferencemodels",
  },
  Pipeline: { group: "turnpike.dev", version: "v1alpha1", kind: "Pipeline", plural: "pipelines" },
  TenantQuota: { group: "turnpike.dev", version: "v1alpha1", kind: "TenantQuota", plural: "tenantquotas" },
} satisfies Record<string, ChildKind>;

/** The kinds the operator's WatchCache watches: every kind it applies (ServiceMonitor when served). */
export function cachedChildKinds(settings: { serviceMonitors: boolean }): ChildKind[] {
  const { ServiceMonitor, ...always } = CHILD_KINDS;
  return [...Object.values(always), ...(settings.serviceMonitors ? [ServiceMonitor] : [])];
}

/** Stable JSON (sorted keys), so equal objects hash equal. */
export function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => a.localeCompare(b));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

export function hashOf(value: unknown): string {
  return createHash("sha256").update(stableStringify(value)).digest("hex").slice(0, 16);
}

/** Returns the child with its desired-hash annotation set (pure). */
export function withDesiredHash<T extends KubernetesObject>(child: T): T {
  // The owner-generation label alone changing (e.g. a KEDA scale bumps the owner's generation)
  // is no reason to rewrite a child whose content is the same.
  const { [LABELS.ownerGeneration]: _generation, ...labels } = child.metadata?.labels ?? {};
  const hash = hashOf({ ...child, metadata: { ...child.metadata, labels } });
  return {
    ...child,
    metadata: { ...child.metadata, annotations: { ...child.metadata?.annotations, [DESIRED_HASH]: hash } },
  };
}

function kindOf(object: KubernetesObject): ChildKind {
  const found = Object.values(CHILD_KINDS).find(
    (k) => k.kind === object.kind && (k.group ? `${k.group}/${k.version}` : k.version) === object.apiVersion,
  );
  if (!found) throw new Error(`no child kind registered for ${object.apiVersion} ${object.kind}`);
  return found;
}

export interface ApplyOutcome {
  applied: string[];
  unchanged: string[];
  pruned: string[];
}

/**
 * Applies each desired child whose hash differs from the live one (as `reader` sees it), then
 * deletes children of the given kinds that carry `selector` but are not desired. `kinds` lists
 * every kind to prune, so a kind that has no desired child this time is still cleaned.
 */
export async function applyChildren(
  namespace: string,
  desired: KubernetesObject[],
  selector: Record<string, string>,
  kinds: ChildKind[],
  reader: ChildReader = apiChildReader,
): Promise<ApplyOutcome> {
  const outcome: ApplyOutcome = { applied: [], unchanged: [], pruned: [] };
  const wanted = new Set<string>();
  // Side by side: each apply is a round trip of its own, and the children do not wait for each other.
  await Promise.all(
    desired.map(async (raw) => {
      const child = withDesiredHash(raw);
      const kind = kindOf(child);
      const id = `${kind.kind}/${child.metadata?.name}`;
      wanted.add(id);
      const live = await reader.get(kind, namespace, child.metadata!.name!);
      if (live?.metadata?.annotations?.[DESIRED_HASH] === child.metadata?.annotations?.[DESIRED_HASH]) {
        // A hand-over that lost its race left the create's entry next to the apply's: repair it.
        const repaired = needsFieldRepair(live) ? await handOverCreatedFields(kind, live!) : undefined;
        if (repaired) reader.applied(kind, repaired);
        outcome.unchanged.push(id);
        return;
      }
      let answer: KubernetesObject;
      try {
        answer =
          (live ? undefined : await createChild(kind, namespace, child)) ??
          (await applyOrRecreate(kind, namespace, child, live));
      } catch (cause) {
        throw new Error(`applying ${id}`, { cause });
      }
      reader.applied(kind, answer);
      outcome.applied.push(id);
    }),
  );
  for (const kind of kinds) {
    for (const item of await reader.list(kind, namespace, selector)) {
      const id = `${kind.kind}/${item.metadata?.name}`;
      if (wanted.has(id)) continue;
      await childClient(kind)
        .InNamespace(namespace)
        .Delete(item.metadata!.name!)
        .catch((error: { status?: number }) => {
          if (error.status !== 404) throw new Error(`pruning ${id}`, { cause: error });
        });
      reader.deleted(kind, namespace, item.metadata!.name!);
      outcome.pruned.push(id);
    }
  }
  return outcome;
}

/**
 * Server-side apply (after handing a create's fields over to it); a Service refused because its
 * clusterIP cannot change (one made with a virtual IP before worker Services became headless) is
 * deleted and created again, once.
 */
async function applyOrRecreate(
  kind: ChildKind,
  namespace: string,
  child: KubernetesObject,
  live: KubernetesObject | undefined,
): Promise<KubernetesObject> {
  if (live) await handOverCreatedFields(kind, live);
  const apply = () => childClient(kind).Apply(child as GenericKind, { force: true });
  try {
    return await apply();
  } catch (error) {
    const immutableClusterIp =
      kind.kind === "Service" && httpStatusOf(error) === 422 && /clusterIPs?\b/.test(describeError(error));
    if (!immutableClusterIp) throw error;
    await childClient(kind).InNamespace(namespace).Delete(child.metadata!.name!);
    return await apply();
  }
}

/** Whether the cluster serves a kind (e.g. ServiceMonitor only with the Prometheus Operator). */
export async function kindServed(kind: ChildKind): Promise<boolean> {
  try {
    await childClient(kind).Get();
    return true;
  } catch (error) {
    if ((error as { status?: number }).status === 404) return false;
    throw new Error(`checking whether ${kind.plural}.${kind.group} is served`, { cause: error });
  }
}
