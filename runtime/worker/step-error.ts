/**
 * Errors that end a request with a failed result. A StepError is deterministic (running the same
 * message again would fail the same way), so the worker publishes a failed InferenceResult and
 * acks instead of letting the message be redelivered.
 */
import { TensorError } from "../shared/tensors.js";

/**
 * Stable codes a failed result carries (the gateway shows them to clients). The collector adds
 * `dead_lettered` for tasks RabbitMQ gave up on (collector/dead-task.ts).
 */
export type StepErrorCode =
  | "invalid_task"
  | "invalid_input"
  | "route_error"
  | "model_error"
  | "processor_error";

/** A deterministic failure of one request. */
export class StepError extends Error {
  constructor(
    readonly code: StepErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "StepError";
  }
}

/** Wraps anything thrown while running a step; tensor problems become `invalid_input`. */
export function toStepError(error: unknown, code: StepErrorCode, context: string): StepError {
  if (error instanceof StepError) return error;
  if (error instanceof TensorError) return new StepError("invalid_input", error.message, { cause: error });
  const message = error instanceof Error ? error.message : String(error);
  return new StepError(code, `${context}: ${message}`, { cause: error });
}
