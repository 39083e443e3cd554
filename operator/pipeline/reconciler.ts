/**
 * Pipeline reconciler. A Pipeline has no children of its own: it becomes routes in the runtime
 * config (rendered per namespace) and a status that says whether every model it uses is Ready.
 * A missing model is a condition, never a crash; the reconcile makes no write when nothing changed.
 */
import { PIPELINE_KIND } from "../shared/names.js";
import { K8s } from "kubernetes-fluent-client";
import { InferenceModel, Pipeline } from "../api/index.js";
import type { KindRegistration } from "../controller.js";
import { conditionsOf, findCondition, mergeConditions } from "../shared/conditions.js";
import type { ReconcileContext } from "../shared/context.js";
import { warn } from "../shared/events.js";
import { isBeingDeleted } from "../shared/finalizer.js";
import { recordGiveUp } from "../shared/give-up.js";
import { getOrUndefined } from "../shared/objects.js";
import { writeStatusIfChanged } from "../shared/status.js";
import { observePipeline } from "./desired.js";

export async function reconcilePipeline(
  ctx: ReconcileContext,
  namespace: string,
  name: string,
): Promise<void> {
  const log = ctx.log.child({ kind: PIPELINE_KIND, namespace, name });
  const pipeline = await getOrUndefined(Pipeline, namespace, name);
  if (!pipeline || isBeingDeleted(pipeline)) {
    // Its routes leave the runtime config; nothing else to clean up.
    ctx.touchRuntimeConfig(namespace);
    return;
  }
  let models: InferenceModel[];
  try {
    models = (await K8s(InferenceModel).InNamespace(namespace).Get()).items;
  } catch (cause) {
    throw new Error(`listing InferenceModels of namespace ${namespace}`, { cause });
  }
  const observed = observePipeline(pipeline, models);
  const current = conditionsOf(pipeline) ?? [];
  const conditions = mergeConditions(current, observed.conditions);
  const wrote = await writeStatusIfChanged(Pipeline, pipeline, { ...observed.status, conditions });
  if (wrote) log.info({ missing: observed.missingModels, notReady: observed.notReady }, "status updated");

  const degraded = findCondition(conditions, "Degraded");
  const before = findCondition(current, "Degraded");
  if (degraded?.status === "True" && (before?.status !== "True" || before.message !== degraded.message)) {
    await warn(pipeline, degraded.reason, degraded.message);
  }
  if (pipeline.status?.observedGeneration !== pipeline.metadata?.generation) {
    ctx.touchRuntimeConfig(namespace);
  }
}

export const pipelineRegistration: KindRegistration = {
  kind: PIPELINE_KIND,
  model: Pipeline,
  reconcile: reconcilePipeline,
  onGiveUp: (_ctx, namespace, name, error) => recordGiveUp(Pipeline, namespace, name, error),
};
