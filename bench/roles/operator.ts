/**
 * The operator under test, as its own process: the real Controller with every registration
 * operator/module.ts wires (InferenceModel, TenantQuota, Pipeline) and the real runtime-config
 * renderer, fed the way operator/capability.ts feeds it (every InferenceModel event enqueues the
 * object, a spec change re-renders the runtime config) and operator/module.ts wires its child
 * caches (a worker Deployment event enqueues its owner), but through a kubernetes-fluent-client
 * watch of InferenceModels instead of a Pepr module, so the benchmark
 * decides when the periodic resync runs. The parent talks to it over IPC:
 *   "idle"   -> waits until every work queue is idle, answers { reconciles, renders }
 *   "resync" -> runs Controller.resync() (what the periodic timer runs), waits for idle, answers
 *   "stop"   -> stops everything and exits
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { K8s } from "kubernetes-fluent-client";
import { InferenceModel } from "../../operator/api/index.js";
import { loadOperatorEnv, settingsFrom } from "../../operator/config.js";
import { Controller, type KindRegistration } from "../../operator/controller.js";
import { inferenceModelRegistration } from "../../operator/inference-model/reconciler.js";
import { pipelineRegistration } from "../../operator/pipeline/reconciler.js";
import { renderRuntimeConfig } from "../../operator/runtime-config/render.js";
import { MANAGED_BY_TURNPIKE, WatchCache } from "../../operator/shared/watch-cache.js";
import { cachedChildKinds, CHILD_KINDS, kindServed, OWN_KINDS } from "../../operator/shared/children.js";
import { describeError } from "../../operator/shared/errors.js";
import { logger } from "../../runtime/shared/logger.js";
import { tenantQuotaRegistration } from "../../operator/tenant-quota/reconciler.js";

const env = loadOperatorEnv();
const [namespace] = env.TURNPIKE_WATCH_NAMESPACES;
if (!namespace || env.TURNPIKE_WATCH_NAMESPACES.length !== 1) {
  throw new Error("set TURNPIKE_WATCH_NAMESPACES to the one benchmark namespace");
}
const counts = { reconciles: 0, renders: 0, failures: 0 };
const counted = (registration: KindRegistration): KindRegistration => ({
  ...registration,
  reconcile: async (ctx, ns, name) => {
    counts.reconciles++;
    try {
      return await registration.reconcile(ctx, ns, name);
    } catch (error) {
      // The work queue retries silently; the first failures say why a round is slow.
      if (counts.failures++ < 5) console.error(`reconcile ${ns}/${name} failed:`, describeError(error));
      throw error;
    }
  },
});
const settings = settingsFrom(env, await kindServed(CHILD_KINDS.ServiceMonitor));
// As operator/module.ts: children and the operator's own kinds are read from watch caches.
const [children, resources] = await Promise.all([
  WatchCache.start(cachedChildKinds(settings), [namespace], logger("operator"), MANAGED_BY_TURNPIKE),
  WatchCache.start(Object.values(OWN_KINDS), [namespace], logger("operator")),
]);
const controller = new Controller({
  env,
  settings,
  children,
  resources,
  kinds: [inferenceModelRegistration, tenantQuotaRegistration, pipelineRegistration].map(counted),
  renderRuntimeConfig: async (ctx, ns) => {
    counts.renders++;
    await renderRuntimeConfig(ctx, ns);
  },
});

const InferenceModelKind = inferenceModelRegistration.kind;
const generations = new Map<string, number | undefined>();
const models = K8s(InferenceModel)
  .InNamespace(namespace)
  .Watch((im: KubernetesObject, phase: string) => {
    const name = im.metadata!.name!;
    controller.objectChanged(InferenceModelKind, im);
    const generation = im.metadata?.generation;
    const changed =
      phase === "DELETED" ||
      !generations.has(name) ||
      generations.get(name) !== generation ||
      !!im.metadata?.deletionTimestamp;
    if (phase === "DELETED") generations.delete(name);
    else generations.set(name, generation);
    if (changed) controller.ctx.touchRuntimeConfig(namespace);
  });
// As operator/module.ts: the child caches' events enqueue owners (worker Deployments' status).
children.onEvent((childKind, event, child) => controller.childChanged(childKind.kind, event, child));
resources.onEvent((kind, _event, object) => controller.resourceChanged(kind.kind, object));
await models.start();

async function idle(timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  const done = await Promise.race([controller.idle().then(() => true), timedOut]);
  clearTimeout(timer);
  return done;
}

process.on("message", (raw) => {
  const message = raw as { cmd: "idle" | "resync" | "stop"; timeoutMs?: number };
  void (async () => {
    if (message.cmd === "stop") {
      models.close();
      await children.close();
      await resources.close();
      await controller.stop();
      process.exit(0);
    }
    const before = { ...counts };
    const started = Date.now();
    if (message.cmd === "resync") await controller.resync();
    const idleReached = await idle(message.timeoutMs ?? 120_000);
    process.send!({
      idle: idleReached,
      ms: Date.now() - started,
      reconciles: counts.reconciles - before.reconciles,
      renders: counts.renders - before.renders,
      failures: counts.failures - before.failures,
      total: counts,
      rabbitmq: controller.ctx.queues.stats,
    });
  })().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
});
process.send!({ ready: true });
