/**
 * The parts of running a generation task that need no broker: reading the GenerationRequest out of
 * an InferenceTask, the completion budget its reservation allows, and the InferenceResult it ends
 * with. Pure.
 */
import {
  type InferenceResult,
  type InferenceTask,
  type StepTiming,
  GENERATION_OUTPUTS,
  GENERATION_PARAMETER,
  generationRequestSchema,
  type GenerationRequest,
} from "../../../shared/contracts/index.js";
import { textTensor } from "../../../shared/tensors.js";
import { StepError } from "../../step-error.js";
import { CANCELLED_CODE, succeededResult } from "../../task-codec.js";
import type { Generation } from "./llama-engine.js";

/** The task's generation request; a missing or malformed one is the request's fault. */
export function generationRequestOf(task: InferenceTask): GenerationRequest {
  const parsed = generationRequestSchema.safeParse(task.parameters?.[GENERATION_PARAMETER]);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new StepError(
      "invalid_input",
      `a text-generation task needs parameters.${GENERATION_PARAMETER}: ${problems.join("; ")}`,
    );
  }
  return parsed.data;
}

/**
 * Most completion tokens the request may produce: its max_tokens, and never more than its
 * reservation leaves after the prompt, so what is charged can never exceed what was reserved.
 */
export function completionBudget(
  task: InferenceTask,
  request: GenerationRequest,
  promptTokens: number,
): number {
  const left = task.reservedTokens - task.outputTokens - promptTokens;
  if (left < 1) {
    throw new StepError(
      "invalid_input",
      `the prompt has ${promptTokens} tokens, more than the ${task.reservedTokens} reserved for the request`,
    );
  }
  return Math.min(request.maxTokens, left);
}

/**
 * The result: the whole text and finish reason as outputs, exact token counts. `cancelled` when the
 * tenant stopped it (DELETE /v1/requests/{id}): it keeps the text so far and charges what ran.
 */
export function generationResult(
  task: InferenceTask,
  generation: Generation,
  timing: StepTiming,
  status: "succeeded" | "cancelled" = "succeeded",
): InferenceResult {
  const outputs = [
    textTensor(GENERATION_OUTPUTS.text, [generation.text], [1]),
    textTensor(GENERATION_OUTPUTS.finishReason, [generation.finishReason], [1]),
  ];
  const result = succeededResult(
    { ...task, inputTokens: generation.promptTokens },
    outputs,
    generation.completionTokens,
    [timing],
  );
  if (status === "succeeded") return result;
  return {
    ...result,
    status,
    error: {
      code: CANCELLED_CODE,
      message: `cancelled by the tenant after ${generation.completionTokens} tokens`,
    },
  };
}
