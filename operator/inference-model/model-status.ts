/**
 * The InferenceModel's status as a pure function of what the reconciler observed: the worker
 * Deployment, the queue and any permanent problem. Conditions are kstatus-compatible; Ready may be
 * True while Progressing is True (a rollout with replicas still serving).
 */
import type { V1Deployment } from "@kubernetes/client-node";
import type { InferenceModel } from "../api/index.js";
import {
  conditionsOf,
  degradedConditions,
  mergeConditions,
  type ConditionInput,
} from "../shared/conditions.js";
import type { PermanentError } from "../shared/errors.js";
import { defaultedSpec } from "./defaults.js";
import { queuePolicy } from "./desired.js";
import { desiredReplicas } from "./desired-worker.js";
import { endpointOf } from "../shared/names.js";
import { modelQueueName, selectorString, workerSelector } from "./naming.js";
import { providerFallbacks } from "../../runtime/shared/contracts/index.js";
import type { QueueInfo } from "./queue.js";
import type { StartFailure } from "./worker-pods.js";

export interface Observed {
  deployment?: V1Deployment;
  queue?: QueueInfo;
  /** The namespace's dead-letter queue; read only when the model dead-letters. */
  deadLetter?: QueueInfo;
  /** A problem only a spec (or cluster) change can fix: Degraded. */
  problem?: PermanentError;
  /** Why the workers cannot start, as they said in their termination message (e.g. a failed download). */
  startFailure?: StartFailure;
}

interface Rollout {
  done: boolean;
  reason: string;
  message: string;
  /** The Deployment controller gave up (progressDeadlineSeconds passed): needs attention. */
  stuck?: string;
}

/** Whether the Deployment has rolled out `want` replicas of its current template (as `kubectl rollout status`). */
export function rolloutOf(deployment: V1Deployment | undefined, want: number): Rollout {
  if (!deployment) return { done: false, reason: "Creating", message: "creating the worker Deployment" };
  const status = deployment.status ?? {};
  const deadline = status.conditions?.find(
    (c) => c.type === "Progressing" && c.reason === "ProgressDeadlineExceeded",
  );
  const stuck = deadline
    ? `worker rollout stuck: ${deadline.message ?? "progress deadline exceeded"}`
    : undefined;
  if ((status.observedGeneration ?? 0) < (deployment.metadata?.generation ?? 0)) {
    return {
      done: false,
      reason: "RollingOut",
      message: "the worker Deployment has not seen the new spec yet",
    };
  }
  const updated = status.updatedReplicas ?? 0;
  const replicas = status.replicas ?? 0;
  const available = status.availableReplicas ?? 0;
  if (updated < want) {
    return { done: false, reason: "RollingOut", message: `${updated} of ${want} replicas updated`, stuck };
  }
  if (replicas > updated) {
    return {
      done: false,
      reason: "RollingOut",
      message: `${replicas - updated} old replicas pending termination`,
      stuck,
    };
  }
  if (available < updated) {
    return {
      done: false,
      reason: "RollingOut",
      message: `${available} of ${updated} updated replicas available`,
      stuck,
    };
  }
  return { done: true, reason: "RolloutComplete", message: `${available} of ${want} replicas available` };
}

function conditionsFor(im: InferenceModel, observed: Observed): ConditionInput[] {
  const generation = im.metadata?.generation ?? 0;
  if (observed.problem) {
    return degradedConditions(generation, observed.problem.reason, observed.problem.message);
  }
  const spec = defaultedSpec(im.spec!);
  const want = desiredReplicas(spec);
  const rollout = rolloutOf(observed.deployment, want);
  const available = observed.deployment?.status?.availableReplicas ?? 0;
  const c = (type: string, status: "True" | "False", reason: string, message: string): ConditionInput => ({
    type,
    status,
    reason,
    message,
    observedGeneration: generation,
  });
  let ready: ConditionInput;
  if (want === 0 && spec.scaling.minReplicas === 0) {
    ready = c("Ready", "True", "ScaledToZero", "no replicas while the queue is idle; a request wakes one");
  } else if (want === 0) {
    ready = c(
      "Ready",
      "False",
      "ScaledDown",
      `spec.replicas is 0 but scaling.minReplicas is ${spec.scaling.minReplicas}; the autoscaler scales it back`,
    );
  } else if (available >= 1) {
    ready = c("Ready", "True", "ReplicasAvailable", `${available} of ${want} replicas available`);
  } else {
    ready = c("Ready", "False", "NoReplicasAvailable", rollout.message);
  }
  const fallback = providerProblem(observed.queue);
  return [
    ready,
    rollout.done || rollout.stuck
      ? c("Progressing", "False", rollout.stuck ? "ProgressDeadlineExceeded" : rollout.reason, "")
      : c("Progressing", "True", rollout.reason, rollout.message),
    // What the workers said beats "stuck": it names the cause (a download, a digest) and the fix.
    observed.startFailure && !rollout.done
      ? c("Degraded", "True", observed.startFailure.reason, observed.startFailure.message)
      : rollout.stuck
        ? c("Degraded", "True", "ProgressDeadlineExceeded", rollout.stuck)
        : fallback
          ? c("Degraded", "True", "ExecutionProviderUnavailable", fallback)
          : c("Degraded", "False", "Reconciled", ""),
  ];
}

/**
 * Workers that run on another execution provider than the spec asked for (they fall back to the
 * CPU and say so in their consumer arguments): a message the user can act on, or undefined.
 */
function providerProblem(queue: QueueInfo | undefined): string | undefined {
  const fallbacks = providerFallbacks(queue?.consumerArguments ?? []);
  if (fallbacks.length === 0) return undefined;
  const { requested, used, reason } = fallbacks[0]!;
  const of = queue?.consumerArguments?.length ?? fallbacks.length;
  return `${fallbacks.length} of ${of} workers run on ${used} instead of ${requested}: ${reason}`;
}

/** The full status to write, and whether a rollout is still under way (poll again soon). */
export function modelStatus(
  im: InferenceModel,
  observed: Observed,
  now: Date = new Date(),
): { status: Record<string, unknown>; progressing: boolean } {
  const name = im.metadata!.name as string;
  const namespace = im.metadata!.namespace as string;
  const conditions = mergeConditions(conditionsOf(im), conditionsFor(im, observed), now);
  const depth = observed.queue?.messages ?? im.status?.queue?.depth;
  const deadLetterDepth = queuePolicy(im).deadLetter
    ? (observed.deadLetter?.messages ?? im.status?.queue?.deadLetterDepth)
    : undefined;
  return {
    status: {
      observedGeneration: im.metadata?.generation ?? 0,
      conditions,
      replicas: observed.deployment?.status?.replicas ?? 0,
      readyReplicas: observed.deployment?.status?.readyReplicas ?? 0,
      selector: selectorString(workerSelector(name)),
      queue: {
        name: modelQueueName(namespace, name),
        ...(depth === undefined ? {} : { depth }),
        ...(deadLetterDepth === undefined ? {} : { deadLetterDepth }),
      },
      endpoint: endpointOf(name),
    },
    progressing: conditions.some((c) => c.type === "Progressing" && c.status === "True"),
  };
}
