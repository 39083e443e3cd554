/**
 * A namespace and an in-process Controller with the TenantQuota and Pipeline registrations and
 * the real runtime-config renderer, against the real apiserver and Redis (admin identity).
 */
import { Redis } from "ioredis";
import { loadOperatorEnv, settingsFrom } from "../../../operator/config.js";
import { Controller } from "../../../operator/controller.js";
import { pipelineRegistration } from "../../../operator/pipeline/reconciler.js";
import { renderRuntimeConfig } from "../../../operator/runtime-config/render.js";
import { tenantQuotaRegistration } from "../../../operator/tenant-quota/reconciler.js";
import { createNamespace, deleteNamespace, kubectlOk, writesSince } from "../../harness/kube.js";
import { serviceUrls, uniqueName } from "../../harness/services.js";

export const ADMIN_USER = "turnpike-admin";

export interface ControllerEnv {
  namespace: string;
  controller: Controller;
  redis: Redis;
  /** Queues objects and waits until every queue (and the runtime-config renders) is idle. */
  reconcile(kind: "TenantQuota" | "Pipeline", ...names: string[]): Promise<void>;
  /** Writes the admin identity made in this namespace since `mark`. */
  writesInNamespace(mark: number): ReturnType<typeof writesSince>;
  /** kubectl with `-n namespace` appended. */
  kubectl(...args: string[]): Promise<string>;
  cleanup(): Promise<void>;
}

export async function controllerEnv(prefix: string): Promise<ControllerEnv> {
  const namespace = await createNamespace(uniqueName(prefix));
  const urls = serviceUrls();
  const env = loadOperatorEnv({
    TURNPIKE_AMQP_URL: urls.amqpUrl,
    TURNPIKE_REDIS_URL: urls.redisUrl,
    TURNPIKE_WATCH_NAMESPACES: namespace,
  });
  const controller = new Controller({
    env,
    settings: settingsFrom(env),
    kinds: [tenantQuotaRegistration, pipelineRegistration],
    renderRuntimeConfig,
    queue: { baseDelayMs: 20, maxDelayMs: 100, maxAttempts: 3 },
  });
  const redis = new Redis(urls.redisUrl);
  return {
    namespace,
    controller,
    redis,
    async reconcile(kind, ...names) {
      for (const name of names) controller.enqueue(kind, namespace, name);
      await controller.idle();
    },
    writesInNamespace: (mark) => writesSince(mark, ADMIN_USER).filter((w) => w.namespace === namespace),
    kubectl: (...args) => kubectlOk([...args, "-n", namespace]),
    async cleanup() {
      await controller.stop();
      const keys = await redis.keys(`tp:*${namespace}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
      await deleteNamespace(namespace);
    },
  };
}
