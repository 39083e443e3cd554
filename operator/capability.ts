/**
 * The Pepr capability: watch bindings that feed the Controller's work queues. No logic runs in
 * Pepr's callbacks beyond deciding what to enqueue; retries, backoff, resync and finalizers are the
 * Controller's (Pepr's Reconcile has none of those, and its Finalize() needs the admission webhook).
 *
 * Import this module only after PEPR_WATCH_MODE=true is set (operator/main.ts does): Pepr decides
 * at import time whether Reconcile() registers anything.
 */
import { Capability } from "pepr";
import { modelToGroupVersionKind, type KubernetesObject } from "kubernetes-fluent-client";
import { WatchPhase } from "kubernetes-fluent-client/dist/fluent/shared-types.js";
import type { Logger } from "../runtime/shared/logger.js";
import { InferenceModel, Pipeline, TenantQuota } from "./api/index.js";
import type { Controller } from "./controller.js";
import { pipelinesUsing } from "./pipeline/dependents.js";
import { INFERENCE_MODEL_KIND, PIPELINE_KIND, TENANT_QUOTA_KIND } from "./shared/names.js";
import { conditionsOf, findCondition } from "./shared/conditions.js";
import { describeError } from "./shared/errors.js";

/** What the bindings remember per object to decide whether others need work. */
interface Seen {
  generation?: number;
  ready?: string;
}

export function turnpikeCapability(
  controller: Controller,
  namespaces: readonly string[],
  log: Logger,
): Capability {
  const capability = new Capability({
    name: "turnpike",
    description: "Reconciles InferenceModels, TenantQuotas and Pipelines into Turnpike infrastructure.",
    ...(namespaces.length ? { namespaces: [...namespaces] } : {}),
  });
  const { When } = capability;
  const seen = new Map<string, Seen>();

  const onEvent = async (kind: string, object: KubernetesObject, deleted: boolean): Promise<void> => {
    const namespace = object.metadata?.namespace;
    const name = object.metadata?.name;
    if (!namespace || !name || !controller.watches(namespace)) return;
    if (controller.handles(kind)) controller.objectChanged(kind, object);

    const key = `${kind}/${namespace}/${name}`;
    const before = seen.get(key);
    const now: Seen = {
      generation: object.metadata?.generation,
      ready: findCondition(conditionsOf(object as { status?: { conditions?: unknown } }), "Ready")?.status,
    };
    if (deleted) seen.delete(key);
    else seen.set(key, now);
    const specChanged =
      deleted || !before || before.generation !== now.generation || !!object.metadata?.deletionTimestamp;
    // The runtime config lists every model, pipeline and tenant: re-render on spec changes.
    if (specChanged) controller.ctx.touchRuntimeConfig(namespace);
    // Pipelines are Ready only when their models are: re-check them when a model's readiness moves.
    if (kind === INFERENCE_MODEL_KIND && (specChanged || before?.ready !== now.ready)) {
      try {
        for (const pipeline of await pipelinesUsing(namespace, name)) {
          controller.enqueue(PIPELINE_KIND, namespace, pipeline);
        }
      } catch (error) {
        // The periodic resync re-checks every Pipeline anyway.
        log.warn(
          { namespace, model: name, error: describeError(error) },
          "finding dependent Pipelines failed",
        );
      }
    }
  };

  for (const [model, kind] of [
    [InferenceModel, INFERENCE_MODEL_KIND],
    [TenantQuota, TENANT_QUOTA_KIND],
    [Pipeline, PIPELINE_KIND],
  ] as const) {
    // Pepr may load its own copy of kubernetes-fluent-client (it requires the ESM package from CJS),
    // whose kind registry lacks ours: always pass the GroupVersionKind (with its plural).
    const gvk = modelToGroupVersionKind(model.name);
    When(model, gvk)
      .IsCreatedOrUpdated()
      .Reconcile((object, phase) => onEvent(kind, object, phase === WatchPhase.Deleted));
    // Pepr opens one watch per binding: a second binding for deletions would have the apiserver
    // send, and the operator decode, every event of the kind once more. Pepr's bindings take every
    // phase ("*", its Event.ANY, which When() has no selector for): this one takes them all.
    everyPhase(capability.bindings.at(-1));
  }
  // Worker Deployments (their status decides the owner's readiness) are watched by the
  // operator's WatchCache, which enqueues the owner itself (Controller.childChanged).
  return capability;
}

/** Pepr's Event.ANY (its enums are not exported): a binding with it receives every watch phase. */
const ANY_EVENT = "*";

/** Widens a Reconcile binding, which When() restricts to some phases, to every phase. */
function everyPhase(binding: { event: string } | undefined): void {
  if (!binding) throw new Error("no Pepr binding to widen");
  binding.event = ANY_EVENT;
}
