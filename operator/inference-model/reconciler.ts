/**
 * Reconciles one InferenceModel: finalizer, queue, children (server-side apply, skip if
 * unchanged, prune), status once if changed. A resync that finds nothing to do makes zero writes.
 *
 * Deletion: unless spec.queue.retainOnDelete, the finalizer first stops the workers (deletes the
 * ScaledObject and Deployment) and waits until no consumer is left on the queue (bounded by the
 * pods' grace period), then deletes the queue with whatever it still holds, so no worker can
 * re-declare it on a restart. With retainOnDelete the queue and its messages stay.
 */
import type { KubernetesObject, V1Deployment } from "@kubernetes/client-node";
import { GenericKind, K8s } from "kubernetes-fluent-client";
import { InferenceModel } from "../api/index.js";
import type { KindRegistration } from "../controller.js";
import { applyChildren, CHILD_KINDS, kindServed, OWN_KINDS, type ChildKind } from "../shared/children.js";
import { conditionsOf, findCondition, type Condition } from "../shared/conditions.js";
import type { ReconcileContext, ReconcileHint, ReconcileResult, Reconciler } from "../shared/context.js";
import {
  describeError,
  httpStatusOf,
  isRetryable,
  permanentCause,
  PermanentError,
} from "../shared/errors.js";
import { warn } from "../shared/events.js";
import { recordGiveUp } from "../shared/give-up.js";
import { ensureFinalizer, isBeingDeleted, removeFinalizer } from "../shared/finalizer.js";
import { FINALIZER, ownerSelector } from "../shared/labels.js";
import { writeStatusIfChanged } from "../shared/status.js";
import { defaultedSpec } from "./defaults.js";
import { childKinds, desiredChildren, queuePolicy } from "./desired.js";
import { isDownloaded, terminationGraceSeconds } from "./desired-worker.js";
import { modelStatus, rolloutOf, type Observed } from "./model-status.js";
import { ensureNamespaceChildren } from "./namespace-children.js";
import { INFERENCE_MODEL_KIND } from "../shared/names.js";
import { modelQueueName } from "./naming.js";
import { deleteModelQueue, ensureModelQueue, inspectModelLanes, inspectQueue } from "./queue.js";
import { names } from "../../runtime/shared/contracts/index.js";
import { readStartFailure } from "./worker-pods.js";
import { settleDecision, StatusSettle } from "./status-settle.js";

/**
 * How soon a model whose rollout is under way is looked at again when its Deployment is not
 * watched (no synced watch cache), or when its workers' Pods (not watched) may say why they fail.
 */
export const PROGRESS_REQUEUE_MS = 5_000;
/** How often deletion checks whether the workers have let go of the queue. */
const DRAIN_REQUEUE_MS = 2_000;

/** The model as the operator's cache of its own kinds has it (a GET in tests without the cache). */
const getModel = async (ctx: ReconcileContext, namespace: string, name: string) =>
  (await ctx.resources.get(OWN_KINDS.InferenceModel, namespace, name)) as InferenceModel | undefined;

async function deleteChild(
  ctx: ReconcileContext,
  childKind: ChildKind,
  namespace: string,
  name: string,
): Promise<void> {
  try {
    await K8s(GenericKind, { kindOverride: childKind }).InNamespace(namespace).Delete(name);
  } catch (error) {
    if (httpStatusOf(error) !== 404) throw new Error(`deleting ${childKind.kind}/${name}`, { cause: error });
  }
  ctx.children.deleted(childKind, namespace, name);
}

/** A refused apply that retrying cannot fix, explained (KEDA missing is the usual one). */
async function applyProblem(error: unknown): Promise<PermanentError | undefined> {
  if (isRetryable(error)) return undefined;
  const permanent = permanentCause(error);
  if (permanent) return permanent;
  const keda = CHILD_KINDS.ScaledObject;
  if (!(await kindServed(keda).catch(() => true))) {
    return new PermanentError(
      "KedaNotInstalled",
      `${keda.plural}.${keda.group}/${keda.version} is not served: install KEDA 2.x, which scales the model ` +
        "(the workers run at spec.replicas, or scaling.minReplicas, meanwhile)",
      { cause: error },
    );
  }
  return new PermanentError("ApplyFailed", describeError(error), { cause: error });
}

/** Emits a Warning Event when Degraded turns True or its message changes (not on every resync). */
async function warnOnNewProblem(im: InferenceModel, before: Condition[] | undefined, after: Condition[]) {
  const previous = findCondition(before, "Degraded");
  const now = findCondition(after, "Degraded");
  if (now?.status !== "True") return;
  if (previous?.status === "True" && previous.message === now.message) return;
  await warn(im as KubernetesObject, now.reason, now.message);
}

async function finalize(
  ctx: ReconcileContext,
  im: InferenceModel,
  log: ReconcileContext["log"],
): Promise<ReconcileResult | void> {
  const { namespace, name } = im.metadata as { namespace: string; name: string };
  if (!im.metadata?.finalizers?.includes(FINALIZER)) return;
  // The gateways stop routing to the model first.
  ctx.touchRuntimeConfig(namespace);
  const spec = defaultedSpec(im.spec!);
  if (spec.queue.retainOnDelete) {
    log.info("retaining the queue (spec.queue.retainOnDelete)");
  } else {
    // Stop the workers: none may still consume, nor re-declare the queue after a restart.
    await deleteChild(ctx, CHILD_KINDS.ScaledObject, namespace, name);
    await deleteChild(ctx, CHILD_KINDS.Deployment, namespace, name);
    const queue =
      (await inspectQueue(ctx.rabbitManagementUrl, modelQueueName(namespace, name))) ??
      (await lanesLeft(ctx, namespace, name));
    if (queue) {
      const deletedAt = Date.parse(im.metadata?.deletionTimestamp ?? "") || Date.now();
      const drainUntil = deletedAt + (terminationGraceSeconds(spec) + 30) * 1000;
      if (queue.consumers > 0 && Date.now() < drainUntil) {
        log.info({ consumers: queue.consumers }, "waiting for workers to stop before deleting the queue");
        return { requeueAfterMs: DRAIN_REQUEUE_MS };
      }
      const { messageCount } = await deleteModelQueue(ctx, namespace, name);
      log.info({ queue: queue.name, messageCount }, "deleted the queue");
      if (messageCount > 0) {
        await warn(
          im as KubernetesObject,
          "QueueDeletedWithMessages",
          `deleted queue ${queue.name} with ${messageCount} unprocessed requests (set ` +
            "spec.queue.retainOnDelete to keep a queue when its model is deleted)",
        );
      }
    }
  }
  await removeFinalizer(InferenceModel, im);
  ctx.touchRuntimeConfig(namespace);
}

/**
 * Declares the queue and applies the children side by side (they do not depend on each other, and
 * each is a few round trips): what they observed, with the queue's problem ahead of the children's.
 */
async function queueAndChildren(
  ctx: ReconcileContext,
  im: InferenceModel,
  desired: KubernetesObject[],
  log: ReconcileContext["log"],
): Promise<Observed & { appliedDeployment: boolean }> {
  const { namespace, name } = im.metadata as { namespace: string; name: string };
  let appliedDeployment = false;
  const queueing = (async (): Promise<Observed> => {
    const observed: Observed = {};
    try {
      observed.queue = await ensureModelQueue(ctx, namespace, name, queuePolicy(im));
    } catch (error) {
      observed.problem = permanentCause(error);
      if (!observed.problem) throw error;
      // The queue still serves with its old arguments; report its depth anyway.
      observed.queue = await ctx.queues
        .inspect(namespace, modelQueueName(namespace, name))
        .catch(() => undefined);
    }
    // The depth in status counts every tenant's lane too (from the same shared listing).
    if (observed.queue) {
      const lanes = await ctx.queues.lanesOf(namespace, observed.queue.name);
      const messages = observed.queue.messages + lanes.reduce((sum, lane) => sum + lane.messages, 0);
      observed.queue = { ...observed.queue, messages };
    }
    if (queuePolicy(im).deadLetter) {
      // Status only: an unreadable management API leaves the last reported depth.
      observed.deadLetter = await ctx.queues
        .inspect(namespace, names(namespace).deadLetterQueue)
        .catch(() => undefined);
    }
    return observed;
  })();
  const applying = (async (): Promise<PermanentError | undefined> => {
    try {
      // The namespace's TriggerAuthentication side by side with the model's children, as each
      // model's own was: without KEDA the workers are still applied when it is refused.
      const [shared, own] = await Promise.allSettled([
        ensureNamespaceChildren(ctx, namespace),
        applyChildren(
          namespace,
          desired,
          ownerSelector({ kind: INFERENCE_MODEL_KIND, name }),
          childKinds(ctx.settings),
          ctx.children,
        ),
      ]);
      if (own.status === "rejected") throw own.reason;
      if (shared.status === "rejected") throw shared.reason;
      const outcome = own.value;
      appliedDeployment = outcome.applied.includes(`${CHILD_KINDS.Deployment.kind}/${name}`);
      if (outcome.applied.length + outcome.pruned.length > 0) log.info(outcome, "children applied");
      return undefined;
    } catch (error) {
      const problem = await applyProblem(error);
      if (!problem) throw error;
      return problem;
    }
  })();
  const [queued, applied] = await Promise.allSettled([queueing, applying]);
  if (queued.status === "rejected") throw queued.reason;
  if (applied.status === "rejected") throw applied.reason;
  return { ...queued.value, problem: queued.value.problem ?? applied.value, appliedDeployment };
}

/** Lanes left without their model queue (deleted by an earlier pass): deleted like the queue. */
async function lanesLeft(ctx: ReconcileContext, namespace: string, name: string) {
  const lanes = await inspectModelLanes(ctx.rabbitManagementUrl, namespace, name);
  if (lanes.length === 0) return undefined;
  const messages = lanes.reduce((sum, lane) => sum + lane.messages, 0);
  return { name: modelQueueName(namespace, name), messages, consumers: 0, arguments: {} };
}

/** Models whose first status after a new rollout waits a moment for the rollout (status-settle.ts). */
const settle = new StatusSettle<Pick<Observed, "queue" | "deadLetter">>();

/**
 * Whether a reconcile asked for after a Deployment's status change may only update the status: the
 * last one saw this generation through without a problem (a Degraded model is reconciled in full,
 * since the problem's source, e.g. the workers' consumer arguments, is read on the way).
 */
function statusOnly(im: InferenceModel, hint: ReconcileHint | undefined): boolean {
  const { namespace, name, generation } = im.metadata as {
    namespace: string;
    name: string;
    generation: number;
  };
  // Its children were applied at this generation moments ago (the status settle window).
  if (settle.settling(`${namespace}/${name}`, generation)) return true;
  return (
    !!hint?.statusOnly &&
    !!im.metadata?.finalizers?.includes(FINALIZER) &&
    im.status?.observedGeneration === im.metadata?.generation &&
    findCondition(conditionsOf(im), "Degraded")?.status === "False"
  );
}

/** Reconciles the InferenceModel `namespace/name`. */
export const reconcileInferenceModel: Reconciler = async (ctx, namespace, name, hint) => {
  const log = ctx.log.child({ kind: INFERENCE_MODEL_KIND, namespace, name });
  let im = await getModel(ctx, namespace, name);
  if (!im || isBeingDeleted(im)) settle.close(`${namespace}/${name}`);
  if (!im) return;
  if (isBeingDeleted(im)) return finalize(ctx, im, log);
  // Only the Deployment's status changed: no queue check or children to apply (a busy broker's
  // queue listing would otherwise hold back the Ready condition); depths stay as last reported.
  const fast = statusOnly(im, hint);
  const withFinalizer = fast ? undefined : await ensureFinalizer(InferenceModel, im);
  if (withFinalizer) {
    // The cache shows what was written until its watch catches up: no second patch meanwhile.
    ctx.resources.applied(OWN_KINDS.InferenceModel, withFinalizer);
    im = withFinalizer as InferenceModel;
  }
  // The runtime config carries the model's batching, tokens and route: re-render on every spec change.
  if (im.status?.observedGeneration !== im.metadata?.generation) ctx.touchRuntimeConfig(namespace);

  const observed: Observed = {};
  let appliedDeployment = false;
  let desired: KubernetesObject[] | undefined;
  try {
    desired = fast ? undefined : desiredChildren(im, ctx.settings);
  } catch (error) {
    observed.problem = permanentCause(error);
    if (!observed.problem) throw error;
  }
  if (desired) {
    const { appliedDeployment: applied, ...seen } = await queueAndChildren(ctx, im, desired, log);
    Object.assign(observed, seen);
    appliedDeployment = applied;
  }
  // Its children are fine, but the namespace's runtime config could not carry it (too large).
  observed.problem ??= ctx.unrouted?.problemFor(namespace, name);
  observed.deployment = (await ctx.children.get(CHILD_KINDS.Deployment, namespace, name)) as
    | V1Deployment
    | undefined;

  // A downloaded model's workers say why they cannot start (failed download, digest mismatch); read
  // their Pods only while a rollout is unfinished, so a healthy model costs no extra request.
  const deployment = observed.deployment;
  if (
    deployment &&
    isDownloaded(im.spec!.model.uri) &&
    !rolloutOf(deployment, deployment.spec?.replicas ?? 0).done
  ) {
    observed.startFailure = await readStartFailure(namespace, name);
  }

  // A status-only reconcile in a settle window reports the depths its full reconcile read.
  const key = `${namespace}/${name}`;
  const generation = im.metadata?.generation ?? 0;
  if (fast) Object.assign(observed, { ...settle.seen(key, generation), ...observed });
  const { status, progressing } = modelStatus(im, observed);
  // A rollout this reconcile started, whose Deployment events bring the model back: its first
  // status waits a moment for the rollout, so that one write reports it (status-settle.ts).
  const watched = !!ctx.children.watches?.(CHILD_KINDS.Deployment, namespace);
  const problem = !!observed.problem || !!observed.startFailure;
  if (appliedDeployment && watched && progressing && !problem) {
    settle.open(key, generation, { queue: observed.queue, deadLetter: observed.deadLetter });
  }
  const windowLeftMs = settle.left(key, generation);
  if (settleDecision({ windowLeftMs, progressing, problem }) === "hold") {
    return { requeueAfterMs: windowLeftMs };
  }
  if (windowLeftMs === 0) settle.close(key);
  const written = await writeStatusIfChanged(InferenceModel, im, status);
  if (written) ctx.resources.applied(OWN_KINDS.InferenceModel, written);
  await warnOnNewProblem(im, conditionsOf(im), status.conditions as Condition[]);
  // A watched Deployment's next status change brings the model back (Controller.childChanged):
  // polling 1,000 rolling-out models every 5 s would be 200 reconciles a second for nothing.
  const poll = !ctx.children.watches?.(CHILD_KINDS.Deployment, namespace) || isDownloaded(im.spec!.model.uri);
  return progressing && poll ? { requeueAfterMs: PROGRESS_REQUEUE_MS } : undefined;
};

/** The InferenceModel's entry for the Controller. */
export const inferenceModelRegistration: KindRegistration = {
  kind: INFERENCE_MODEL_KIND,
  model: InferenceModel,
  reconcile: reconcileInferenceModel,
  // Degraded with the error's message and a Warning Event.
  onGiveUp: (_ctx, namespace, name, error) => recordGiveUp(InferenceModel, namespace, name, error),
};
