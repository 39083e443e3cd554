/**
 * Renders the runtime ConfigMap of one namespace: list the namespace's InferenceModels, Pipelines
 * and TenantQuotas (from the operator's watch cache of them), compute the config (pure), validate
 * it with the runtime's own schema and apply it with the desired-hash skip, so an unchanged config
 * costs reads only. A config too large for one ConfigMap even gzipped is refused: the last one
 * stays and the models it does not carry report Degraded (unrouted-models.ts). When nothing is
 * left to configure, the ConfigMap is deleted.
 */
import { K8s, kind } from "kubernetes-fluent-client";
import { parseRuntimeConfig } from "../../runtime/shared/contracts/index.js";
import type { InferenceModel, Pipeline, TenantQuota } from "../api/index.js";
import { applyChildren, CHILD_KINDS, OWN_KINDS, type ChildKind } from "../shared/children.js";
import type { ReconcileContext } from "../shared/context.js";
import { httpStatusOf, PermanentError } from "../shared/errors.js";
import { LABELS } from "../shared/labels.js";
import { RUNTIME_CONFIG_MAP } from "../shared/names.js";
import { configOfConfigMap, RuntimeConfigTooLargeError } from "./config-map-data.js";
import { desiredRuntimeConfig, runtimeConfigMap } from "./desired.js";
import { unroutedModels } from "./unrouted-models.js";

export async function renderRuntimeConfig(ctx: ReconcileContext, namespace: string): Promise<void> {
  const log = ctx.log.child({ kind: "RuntimeConfig", namespace });
  const list = async (kind: ChildKind) => {
    try {
      return await ctx.resources.list(kind, namespace, {});
    } catch (cause) {
      throw new Error(`listing ${kind.kind}s of namespace ${namespace}`, { cause });
    }
  };
  const [models, pipelines, tenants] = (await Promise.all([
    list(OWN_KINDS.InferenceModel),
    list(OWN_KINDS.Pipeline),
    list(OWN_KINDS.TenantQuota),
  ])) as [InferenceModel[], Pipeline[], TenantQuota[]];
  const desired = desiredRuntimeConfig(namespace, models, pipelines, tenants);
  for (const skip of desired.skipped) log.debug(skip, "left out of the runtime config");

  if (desired.empty) {
    ctx.unrouted?.set(namespace, []);
    await deleteIfOurs(namespace);
    return;
  }
  let config;
  try {
    config = parseRuntimeConfig(desired.config, `runtime config of namespace ${namespace}`);
  } catch (cause) {
    // A bug in desiredRuntimeConfig or a contract mismatch: retrying cannot help.
    throw new PermanentError("InvalidRuntimeConfig", "the rendered runtime config is invalid", { cause });
  }
  let configMap;
  try {
    configMap = runtimeConfigMap(namespace, config);
  } catch (cause) {
    if (!(cause instanceof RuntimeConfigTooLargeError)) throw cause;
    // The last ConfigMap that fitted stays: the models it does not carry as they are now say so.
    const live = configOfConfigMap(
      (await ctx.children.get(CHILD_KINDS.ConfigMap, namespace, RUNTIME_CONFIG_MAP)) as
        | Parameters<typeof configOfConfigMap>[0]
        | undefined,
    );
    const unrouted = unroutedModels(config, live);
    ctx.unrouted?.set(namespace, unrouted, cause.message);
    log.error({ bytes: cause.bytes, models: cause.models, unrouted: unrouted.length }, cause.message);
    throw new PermanentError("RuntimeConfigTooLarge", cause.message, { cause });
  }
  const outcome = await applyChildren(namespace, [configMap], {}, [], ctx.children);
  ctx.unrouted?.set(namespace, []);
  if (outcome.applied.length > 0) {
    log.info(
      { models: config.models.length, pipelines: config.pipelines.length, tenants: config.tenants.length },
      "runtime config updated",
    );
  }
}

async function deleteIfOurs(namespace: string): Promise<void> {
  const client = K8s(kind.ConfigMap).InNamespace(namespace);
  const live = await client.Get(RUNTIME_CONFIG_MAP).catch((error) => {
    if (httpStatusOf(error) === 404) return undefined;
    throw new Error(`reading ConfigMap ${RUNTIME_CONFIG_MAP}`, { cause: error });
  });
  if (live?.metadata?.labels?.[LABELS.managedBy] !== "turnpike") return;
  await client.Delete(RUNTIME_CONFIG_MAP).catch((error) => {
    if (httpStatusOf(error) !== 404)
      throw new Error(`deleting ConfigMap ${RUNTIME_CONFIG_MAP}`, { cause: error });
  });
}
