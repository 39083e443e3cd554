/**
 * What a worker tells the operator about the execution provider it really runs its model on, and
 * how the operator reads it. The runtime never talks to the Kubernetes API, so the channel is the
 * one the operator already reads: each worker's consumer on its model queue carries these
 * consumer arguments, which the RabbitMQ management API lists under the queue's `consumer_details`.
 */

import type { EXECUTION_PROVIDERS } from "./vocabulary.js";

/** An execution provider an InferenceModel may ask for (spec.runtime.executionProvider). */
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

/** Consumer argument: the provider the session runs on. */
export const USED_PROVIDER_ARGUMENT = "x-turnpike-execution-provider";
/** Consumer argument: the provider the spec asked for. */
export const REQUESTED_PROVIDER_ARGUMENT = "x-turnpike-requested-execution-provider";
/** Consumer argument, only on a fallback: why the requested provider could not be used. */
export const FALLBACK_REASON_ARGUMENT = "x-turnpike-execution-provider-fallback";

/** The provider a worker asked for and the one its session got. */
export interface ProviderChoice {
  requested: ExecutionProvider;
  used: ExecutionProvider;
  /** The CUDA device the session was asked to use. */
  deviceId?: number;
  /** Why `requested` was not available (set only when used differs from requested). */
  reason?: string;
}

/** The consumer arguments that report `choice`. */
export function providerArguments(choice: ProviderChoice): Record<string, string> {
  return {
    [REQUESTED_PROVIDER_ARGUMENT]: choice.requested,
    [USED_PROVIDER_ARGUMENT]: choice.used,
    ...(choice.reason ? { [FALLBACK_REASON_ARGUMENT]: choice.reason.slice(0, 512) } : {}),
  };
}

/** A worker that runs on another provider than the spec asked for. */
export interface ProviderFallback {
  requested: string;
  used: string;
  reason: string;
}

/** The fallbacks reported by the consumers of a model queue (consumers of older workers report none). */
export function providerFallbacks(consumers: readonly Record<string, unknown>[]): ProviderFallback[] {
  return consumers.flatMap((args) => {
    const requested = args[REQUESTED_PROVIDER_ARGUMENT];
    const used = args[USED_PROVIDER_ARGUMENT];
    if (typeof requested !== "string" || typeof used !== "string" || requested === used) return [];
    const reason = args[FALLBACK_REASON_ARGUMENT];
    return [{ requested, used, reason: typeof reason === "string" ? reason : "no reason given" }];
  });
}
