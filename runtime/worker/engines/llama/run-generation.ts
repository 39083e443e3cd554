/**
 * One generation task from start to result: read the request, count the prompt, cap the completion
 * by the reservation, generate (relaying text to the answering gateway as it comes, when it
 * streams), and build the result. Publishing and acking stay with the consumer, as for every model.
 */
import type { Channel } from "amqplib";
import { performance } from "node:perf_hooks";
import {
  type InferenceResult,
  type InferenceTask,
  type StreamMessage,
} from "../../../shared/contracts/index.js";
import { StepError } from "../../step-error.js";
import type { Cancellations } from "./cancel-listener.js";
import { completionBudget, generationRequestOf, generationResult } from "./generation-task.js";
import { PromptError, type Generation, type LlamaEngine } from "./llama-engine.js";

/** What a generation needs from the worker. */
export interface GenerationDeps {
  engine: LlamaEngine;
  channel: Channel;
  worker: string;
  cancellations: Cancellations;
}

/** The result to publish, and what to send the streaming gateway once it is confirmed. */
export interface GenerationOutcome {
  result: InferenceResult;
  announce: () => void;
}

/** Runs `task`; a bad request throws a StepError, a broken model whatever the engine threw. */
export async function runGeneration(
  deps: GenerationDeps,
  task: InferenceTask,
  queuedMs: number,
): Promise<GenerationOutcome> {
  const { engine, channel, worker, cancellations } = deps;
  const request = generationRequestOf(task);
  let maxTokens: number;
  try {
    maxTokens = completionBudget(task, request, engine.prompt(request).count);
  } catch (error) {
    if (error instanceof PromptError) throw new StepError("invalid_input", error.message);
    throw error;
  }
  let seq = 0;
  const send = (message: StreamMessage) => {
    if (!request.replyTo) return;
    // Non-persistent and unconfirmed: a gateway that is gone simply drops it (no route).
    channel.publish("", request.replyTo, Buffer.from(JSON.stringify(message)), {
      persistent: false,
      contentType: "application/json",
    });
  };
  const { signal, done, by } = cancellations.start(task.requestId);
  const started = performance.now();
  let generation: Generation | undefined;
  let cancelledByTenant = false;
  try {
    generation = await engine.generate(request, {
      maxTokens,
      signal,
      onText: request.replyTo
        ? (text) => send({ type: "delta", requestId: task.requestId, seq: seq++, text })
        : undefined,
    });
  } catch (error) {
    if (error instanceof PromptError) throw new StepError("invalid_input", error.message);
    throw error;
  } finally {
    // Read before done() forgets it: a tenant's cancellation ends the request `cancelled`.
    cancelledByTenant = generation?.finishReason === "cancelled" && by() === "tenant";
    done();
  }
  const timing = {
    step: task.route[0]?.step ?? task.target.name,
    worker,
    queuedMs,
    inferMs: performance.now() - started,
    batchSize: 1,
  };
  return {
    result: generationResult(task, generation!, timing, cancelledByTenant ? "cancelled" : "succeeded"),
    announce: () =>
      send({
        type: "done",
        requestId: task.requestId,
        seq: seq++,
        finishReason: generation.finishReason,
        promptTokens: generation.promptTokens,
        completionTokens: generation.completionTokens,
      }),
  };
}
