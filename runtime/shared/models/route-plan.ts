/**
 * How a route (a request's remaining steps) maps onto queues.
 *
 * Built-in processors have no queue of their own: each runs inline in a model's worker, which
 * saves a queue hop (a broker round trip and a re-serialization of the tensors) per processor.
 * A route is cut into segments, each made of the processors before a model step, the model step,
 * and the processors after it up to the next model step. A segment runs in one worker of its model;
 * the route enters at the queue of its first model step (see {@link entryModel}). A route without
 * any model step cannot be queued: the gateway refuses such a pipeline.
 *
 * Example: [image-to-tensor, rec (model), ctc-decode, cls (model), softmax-argmax] has two segments:
 * [image-to-tensor, rec, ctc-decode] in rec's worker, then [cls, softmax-argmax] in cls's worker.
 */
import type { RouteStep } from "../contracts.js";

/** The part of a route that one worker runs. */
export interface RouteSegment {
  /** Steps of this segment in order: processors, one model step, processors. */
  steps: RouteStep[];
  /** The segment's model; its worker consumes the segment. */
  model: string;
  /** The route that remains after the segment (empty when the request is done). */
  rest: RouteStep[];
}

/** The model whose queue a route enters, or undefined when it has no model step. */
export function entryModel(route: readonly RouteStep[]): string | undefined {
  return route.find((step) => step.model !== undefined)?.model;
}

/** Cuts the first segment off `route`; throws when the route is empty or has no model step. */
export function planSegment(route: readonly RouteStep[]): RouteSegment {
  const first = route.findIndex((step) => step.model !== undefined);
  if (first < 0) {
    throw new Error(
      route.length === 0
        ? "the route is empty"
        : "the route has no model step (processors run in model workers)",
    );
  }
  let end = first + 1;
  while (end < route.length && route[end]!.model === undefined) end++;
  return { steps: route.slice(0, end), model: route[first]!.model!, rest: route.slice(end) };
}

/** Built-in processors every worker runs inline (pipelines name them in `steps[].processor`). */
export const BUILTIN_PROCESSORS = [
  "image-to-tensor",
  "ctc-decode",
  "softmax-argmax",
  "tokenize",
  "mean-pool",
] as const;
/** Name of a built-in processor. */
export type BuiltinProcessor = (typeof BUILTIN_PROCESSORS)[number];
