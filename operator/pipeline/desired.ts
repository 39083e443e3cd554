/**
 * A Pipeline's observed state from the InferenceModels it references (pure): Ready only when the
 * runtime can run its steps (see pipelineGaps) and every referenced model (step models and the
 * shadow model) exists and is Ready for its current generation; otherwise a condition that names
 * what is missing.
 */
import type { InferenceModel, Pipeline, PipelineSpec } from "../api/index.js";
import {
  conditionsOf,
  degradedConditions,
  findCondition,
  progressingConditions,
  readyConditions,
  type ConditionInput,
} from "../shared/conditions.js";
import { pipelineGaps } from "../../runtime/shared/contracts/index.js";
import { endpointOf } from "../shared/names.js";
import { orderedSteps } from "../shared/pipeline-steps.js";

/** Names of the InferenceModels a pipeline uses, in order of first use (steps, then shadow). */
export function referencedModels(spec: PipelineSpec): string[] {
  const names = spec.steps.flatMap((s) => (s.model ? [s.model] : []));
  if (spec.shadow) names.push(spec.shadow.model);
  return [...new Set(names)];
}

/** What this runtime would not run of `spec` (a step order the CEL rules allow always resolves). */
function runtimeGaps(spec: PipelineSpec) {
  try {
    return pipelineGaps({ steps: orderedSteps(spec.steps), shadow: spec.shadow });
  } catch (error) {
    return { blocking: [(error as Error).message], notes: [] };
  }
}

/** Whether an InferenceModel is Ready for its current generation, and if not, why. */
export function modelReadiness(model: InferenceModel): { ready: boolean; why: string } {
  if (model.metadata?.deletionTimestamp) return { ready: false, why: "being deleted" };
  const generation = model.metadata?.generation;
  const ready = findCondition(conditionsOf(model), "Ready");
  if (!ready) return { ready: false, why: "not reconciled yet" };
  const observed = ready.observedGeneration ?? model.status?.observedGeneration;
  if (generation !== undefined && observed !== undefined && observed !== generation) {
    return { ready: false, why: `status describes generation ${observed}, not ${generation}` };
  }
  if (ready.status !== "True") {
    return { ready: false, why: ready.message ? `${ready.reason}: ${ready.message}` : ready.reason };
  }
  return { ready: true, why: "" };
}

export interface PipelineObservation {
  conditions: ConditionInput[];
  /** Referenced models that do not exist (status.missingModels). */
  missingModels: string[];
  notReady: string[];
  status: {
    observedGeneration: number;
    steps: number;
    missingModels?: string[];
    endpoint: string;
  };
}

/** Conditions and status fields of `pipeline`, given the InferenceModels of its namespace. */
export function observePipeline(pipeline: Pipeline, models: readonly InferenceModel[]): PipelineObservation {
  const generation = pipeline.metadata?.generation ?? 0;
  const namespace = pipeline.metadata!.namespace!;
  const byName = new Map(models.map((m) => [m.metadata!.name!, m]));
  const referenced = referencedModels(pipeline.spec!);
  const missing = referenced.filter((name) => !byName.has(name));
  const waiting = referenced
    .filter((name) => byName.has(name))
    .map((name) => ({ name, ...modelReadiness(byName.get(name)!) }))
    .filter((m) => !m.ready);
  const notReadyText = waiting.map((m) => `${m.name} (${m.why})`).join(", ");

  const gaps = runtimeGaps(pipeline.spec!);
  const name = pipeline.metadata!.name!;
  let conditions: ConditionInput[];
  if (byName.has(name)) {
    conditions = degradedConditions(
      generation,
      "NameConflict",
      `InferenceModel ${name} has the same name: requests to /v2/models/${name} reach the model, so ` +
        "this Pipeline cannot be called; rename one of them",
    );
  } else if (gaps.blocking.length > 0) {
    conditions = degradedConditions(
      generation,
      "NotRunnable",
      `this runtime cannot run the pipeline as specified: ${gaps.blocking.join("; ")}`,
    );
  } else if (missing.length > 0) {
    const message =
      `InferenceModel${missing.length > 1 ? "s" : ""} ${missing.join(", ")} not found in namespace ` +
      `${namespace}` +
      (waiting.length > 0 ? `; not Ready: ${notReadyText}` : "");
    conditions = degradedConditions(generation, "ModelNotFound", message);
  } else if (waiting.length > 0) {
    conditions = progressingConditions(
      generation,
      "ModelsNotReady",
      `waiting for InferenceModel${waiting.length > 1 ? "s" : ""} to become Ready: ${notReadyText}`,
    );
  } else {
    conditions = readyConditions(
      generation,
      `all ${referenced.length} referenced InferenceModel${referenced.length > 1 ? "s are" : " is"} Ready: ` +
        referenced.join(", ") +
        (gaps.notes.length > 0 ? `; note: ${gaps.notes.join("; ")}` : ""),
    );
  }
  return {
    conditions,
    missingModels: missing,
    notReady: waiting.map((m) => m.name),
    status: {
      observedGeneration: generation,
      steps: pipeline.spec!.steps.length,
      ...(missing.length > 0 ? { missingModels: missing } : {}),
      endpoint: endpointOf(pipeline.metadata!.name!),
    },
  };
}
