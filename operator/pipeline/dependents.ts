/** Which Pipelines use an InferenceModel, so a change of the model's readiness re-reconciles them. */
import { K8s } from "kubernetes-fluent-client";
import { Pipeline } from "../api/index.js";
import { referencedModels } from "./desired.js";

/** Names of the Pipelines of `namespace` whose steps or shadow use InferenceModel `model`. */
export async function pipelinesUsing(namespace: string, model: string): Promise<string[]> {
  let pipelines: Pipeline[];
  try {
    pipelines = (await K8s(Pipeline).InNamespace(namespace).Get()).items;
  } catch (cause) {
    throw new Error(`listing Pipelines of namespace ${namespace}`, { cause });
  }
  return pipelines
    .filter((p) => p.spec && referencedModels(p.spec).includes(model))
    .map((p) => p.metadata!.name!);
}
