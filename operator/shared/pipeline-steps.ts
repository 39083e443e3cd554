/** A Pipeline's steps as the runtime config lists them; used by the Pipeline and runtime-config folders. */
import type { PipelineSpec } from "../api/index.js";
import type { RuntimeConfigInput } from "../../runtime/shared/contracts/index.js";

/** One step of a pipeline in the runtime config. */
export type StepInput = NonNullable<RuntimeConfigInput["pipelines"]>[number]["steps"][number];

/**
 * Steps with explicit dependencies (the CRD's unset dependsOn means the previous step), in a
 * topological order that keeps spec order wherever the dependencies allow it.
 */
export function orderedSteps(steps: PipelineSpec["steps"]): StepInput[] {
  const resolved: StepInput[] = steps.map((step, i) => ({
    name: step.name,
    ...(step.model ? { model: step.model } : {}),
    ...(step.processor ? { processor: String(step.processor) } : {}),
    ...(step.parameters && Object.keys(step.parameters).length > 0 ? { parameters: step.parameters } : {}),
    dependsOn: step.dependsOn ? [...step.dependsOn] : i > 0 ? [steps[i - 1]!.name] : [],
    ...(step.inputFrom ? { inputFrom: step.inputFrom } : {}),
    ...(step.maxOutputTokens ? { maxOutputTokens: step.maxOutputTokens } : {}),
  }));
  const names = new Set(resolved.map((s) => s.name));
  for (const step of resolved) {
    const unknown = step.dependsOn!.filter((d) => !names.has(d));
    if (unknown.length > 0)
      throw new Error(`step ${step.name} depends on unknown step(s) ${unknown.join(", ")}`);
  }
  const placed = new Set<string>();
  const ordered: StepInput[] = [];
  while (ordered.length < resolved.length) {
    const next = resolved.find((s) => !placed.has(s.name) && s.dependsOn!.every((d) => placed.has(d)));
    if (!next) {
      const stuck = resolved.filter((s) => !placed.has(s.name)).map((s) => s.name);
      throw new Error(`steps ${stuck.join(", ")} form a dependency cycle`);
    }
    placed.add(next.name);
    ordered.push(next);
  }
  return ordered;
}
