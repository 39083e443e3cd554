/** The answer of a finished generation, read from its durable record. */
import { GENERATION_OUTPUTS, type FinishReason } from "../../shared/contracts/index.js";
import type { GatewayContext } from "../context.js";
import { ApiError } from "../errors.js";
import { cancelledError, isFinal, toOipOutputs, type RequestState } from "../views.js";
import type { Answer } from "./openai-views.js";

/** Waits for the completion notice (or the longest synchronous wait), then reads the state. */
export async function waitForFinal(
  ctx: GatewayContext,
  requestId: string,
  tenant: string,
  notice: Promise<unknown>,
  cancel: () => void,
): Promise<RequestState | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const state = await ctx.states.read(requestId, tenant);
    if (state && isFinal(state)) return state;
    await Promise.race([
      notice,
      new Promise((resolve) => (timer = setTimeout(resolve, ctx.env.TURNPIKE_MAX_SYNC_TIMEOUT_MS))),
    ]);
    return await ctx.states.read(requestId, tenant);
  } finally {
    clearTimeout(timer);
    cancel();
  }
}

/** The answer a final record holds; a failed record becomes the error it carries. */
export function answerOf(state: RequestState, model: string, created: number): Answer {
  if (state.kind !== "record") throw new ApiError("internal_error", "the request has no record yet");
  const record = state.record;
  if (record.status === "cancelled") throw cancelledError(record.id);
  if (record.status !== "succeeded") {
    const code = record.error?.code ?? "unknown";
    const message = `${code}: ${record.error?.message ?? "the request failed"}`;
    throw new ApiError(/^invalid/.test(code) ? "inference_rejected" : "inference_failed", message);
  }
  const outputs = toOipOutputs(record.outputs);
  const text = String(outputs.find((o) => o.name === GENERATION_OUTPUTS.text)?.data[0] ?? "");
  const finishReason = String(
    outputs.find((o) => o.name === GENERATION_OUTPUTS.finishReason)?.data[0] ?? "stop",
  ) as FinishReason;
  return {
    id: record.id,
    model,
    created,
    text,
    finishReason,
    promptTokens: record.inputTokens,
    completionTokens: record.outputTokens,
  };
}
