/**
 * What every InferenceModel of a namespace shares and the reconciler applies once per namespace
 * instead of once per model: the TriggerAuthentication its ScaledObjects refer to. Skipped when the
 * cached one carries the desired hash (zero writes on a resync); reconciles that find it missing at
 * the same moment share one apply.
 */
import { applyChildren } from "../shared/children.js";
import type { ReconcileContext } from "../shared/context.js";
import { namespaceTriggerAuthentication } from "./desired-autoscaling.js";

const applying = new Map<string, Promise<unknown>>();

/** Applies the namespace's shared children if they differ from what the cache shows. */
export async function ensureNamespaceChildren(ctx: ReconcileContext, namespace: string): Promise<void> {
  const desired = [namespaceTriggerAuthentication(namespace, ctx.settings)];
  const running = applying.get(namespace);
  if (running) {
    await running;
    return;
  }
  // No kinds to prune: the shared children carry no owner, and nothing else is selected.
  const apply = applyChildren(namespace, desired, {}, [], ctx.children).finally(() =>
    applying.delete(namespace),
  );
  applying.set(namespace, apply);
  await apply;
}
