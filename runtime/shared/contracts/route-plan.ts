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
import type { RouteStep } from "./messages.js";
import { BUILTIN_PROCESSORS } from "./vocabulary.js";

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

/** The parts of a pipeline's config that decide whether this runtime can run it. */
export interface PipelineShape {
  steps: readonly {
    name: string;
    processor?: string;
    dependsOn?: readonly string[];
    inputFrom?: string;
  }[];
  shadow?: { model: string };
}

/** What keeps this runtime from running a pipeline as configured, and what it leaves out. */
export interface PipelineGaps {
  /** Each makes requests fail or compute something else than asked: the pipeline is not run. */
  blocking: string[];
  /** Configured but not done; requests are unaffected. */
  notes: string[];
}

/**
 * This runtime runs a pipeline as one chain over queues: each step consumes the outputs of the
 * step listed before it (the first, the request) and runs a model or a built-in processor. A DAG
 * step (other dependencies, or `inputFrom` naming anything else) and a processor this build lacks
 * are refused rather than run as a chain, which would feed a step the wrong tensors; a shadow is
 * accepted but not run. Pure; steps in the runtime config's order (dependsOn explicit).
 */
export function pipelineGaps(pipeline: PipelineShape): PipelineGaps {
  const blocking: string[] = [];
  pipeline.steps.forEach((step, i) => {
    const previous = i === 0 ? undefined : pipeline.steps[i - 1]!.name;
    const expected = previous ? [previous] : [];
    const dependsOn = step.dependsOn ?? expected;
    const chained =
      dependsOn.length === expected.length &&
      dependsOn.every((d, j) => d === expected[j]) &&
      (step.inputFrom === undefined || step.inputFrom === (previous ?? "request"));
    if (!chained) {
      const reads = step.inputFrom ?? (dependsOn.length === 0 ? "request" : dependsOn.join(" + "));
      blocking.push(
        `step ${step.name} reads ${reads}, not ${previous ? `step ${previous}` : "the request"} ` +
          "(DAG steps are not run yet; every step must consume the one before it)",
      );
    }
    if (step.processor !== undefined && !(BUILTIN_PROCESSORS as readonly string[]).includes(step.processor)) {
      blocking.push(`step ${step.name}: processor ${step.processor} is not built into this runtime`);
    }
  });
  const notes = pipeline.shadow
    ? [`the shadow to ${pipeline.shadow.model} is not run yet (requests are unaffected)`]
    : [];
  return { blocking, notes };
}
