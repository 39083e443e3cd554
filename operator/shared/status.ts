/** Writes a custom resource's status subresource once, and only when it changed. */
import type { KubernetesObject } from "@kubernetes/client-node";
import { K8s, type GenericClass } from "kubernetes-fluent-client";
import { stableStringify } from "./children.js";

/**
 * Patches `.status` to `next` when it differs from the object's current status. Fields that the
 * new status drops are sent as null, since a merge patch would otherwise keep them. Returns
 * the object as written (so a watch cache can show it before its event arrives), or undefined
 * when nothing needed writing. The operator's own status writes come back as MODIFIED events;
 * comparing first is what stops that loop.
 */
export async function writeStatusIfChanged<T extends GenericClass>(
  model: T,
  object: KubernetesObject & { status?: object },
  next: Record<string, unknown>,
): Promise<KubernetesObject | undefined> {
  const current = (object.status ?? {}) as Record<string, unknown>;
  if (stableStringify(current) === stableStringify(next)) return undefined;
  const patch: Record<string, unknown> = { ...next };
  for (const key of Object.keys(current)) if (!(key in next)) patch[key] = null;
  try {
    return await K8s(model).PatchStatus({
      metadata: { name: object.metadata!.name, namespace: object.metadata!.namespace },
      status: patch,
    } as never);
  } catch (cause) {
    throw new Error(
      `writing status of ${object.kind} ${object.metadata?.namespace}/${object.metadata?.name}`,
      {
        cause,
      },
    );
  }
}
