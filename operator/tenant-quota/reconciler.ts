/**
 * TenantQuota reconciler: the tenant's limits and API-key hashes in Redis (QuotaStore, prefix =
 * namespace), usage written back to status. Reads the referenced Secrets, hashes each key and
 * forgets the plaintext; writes Redis only when what it holds differs; removes the tenant in the
 * finalizer. The periodic resync refreshes usage; a Secret change re-triggers through the Secret
 * watch (secret-watch.ts).
 */
import { TENANT_QUOTA_KIND } from "../shared/names.js";
import { K8s, kind } from "kubernetes-fluent-client";
import { QuotaStore } from "../../runtime/shared/quota/index.js";
import { TenantQuota } from "../api/index.js";
import type { KindRegistration } from "../controller.js";
import {
  conditionsOf,
  degradedConditions,
  findCondition,
  mergeConditions,
  type Condition,
} from "../shared/conditions.js";
import type { ReconcileContext } from "../shared/context.js";
import { warn } from "../shared/events.js";
import { ensureFinalizer, isBeingDeleted, removeFinalizer } from "../shared/finalizer.js";
import { recordGiveUp } from "../shared/give-up.js";
import { FINALIZER } from "../shared/labels.js";
import { getOrUndefined } from "../shared/objects.js";
import { writeStatusIfChanged } from "../shared/status.js";
import { desiredTenant, quotaConditions, resolveApiKeys, tenantOwner, usageStatus } from "./desired.js";
import { isPublished, readPublishedTenant } from "./redis-state.js";
import { tenantSecretIndex } from "./secret-index.js";

export async function reconcileTenantQuota(
  ctx: ReconcileContext,
  namespace: string,
  name: string,
): Promise<void> {
  const log = ctx.log.child({ kind: TENANT_QUOTA_KIND, namespace, name });
  const quota = await getOrUndefined(TenantQuota, namespace, name);
  if (!quota) {
    tenantSecretIndex.forget(namespace, name);
    ctx.touchRuntimeConfig(namespace);
    return;
  }
  const store = new QuotaStore(ctx.redis, namespace);
  const spec = quota.spec!;
  const quotas = await listQuotas(namespace);

  if (isBeingDeleted(quota)) {
    if (quota.metadata?.finalizers?.includes(FINALIZER)) {
      // Another TenantQuota claiming the same tenant keeps it (it re-publishes its own limits).
      const heir = tenantOwner(
        quotas.filter((q) => q.metadata?.name !== name),
        spec.tenant,
      );
      if (!heir) {
        await store.removeTenant(spec.tenant);
        log.info({ tenant: spec.tenant }, "tenant removed from Redis");
      }
      await removeFinalizer(TenantQuota, quota);
    }
    tenantSecretIndex.forget(namespace, name);
    ctx.touchRuntimeConfig(namespace);
    return;
  }

  await ensureFinalizer(TenantQuota, quota);
  const desired = desiredTenant(spec);
  tenantSecretIndex.set(namespace, name, desired.secrets);
  const generation = quota.metadata?.generation ?? 0;
  const current = conditionsOf(quota) ?? [];
  if (quota.status?.observedGeneration !== generation) ctx.touchRuntimeConfig(namespace);

  const owner = tenantOwner(quotas, spec.tenant);
  if (owner && owner.metadata?.name !== name) {
    const message = `tenant ${spec.tenant} is already claimed by TenantQuota ${owner.metadata?.name} in namespace ${namespace}`;
    const conditions = mergeConditions(current, degradedConditions(generation, "TenantConflict", message));
    await writeStatusIfChanged(TenantQuota, quota, {
      observedGeneration: generation,
      conditions,
      apiKeys: 0,
    });
    await warnOnNewDegraded(quota, current, conditions);
    return;
  }

  const secrets = await readSecrets(namespace, desired.secrets);
  const published = await readPublishedTenant(ctx.redis, namespace, desired.tenant);
  // A hash published for a tenant that no TenantQuota claims any more is stale: take it over.
  const claimed = new Set(quotas.filter((q) => !q.metadata?.deletionTimestamp).map((q) => q.spec?.tenant));
  const takenBy = new Map([...published.others].filter(([, tenant]) => claimed.has(tenant)));
  const keys = resolveApiKeys(desired.apiKeys, secrets, takenBy);
  secrets.clear();

  if (!isPublished(published, desired.tenant, desired.limits, keys.hashes)) {
    await store.writeTenant(desired.tenant, desired.limits, keys.hashes);
    log.info({ tenant: desired.tenant, apiKeys: keys.hashes.length }, "limits and API-key hashes published");
  }

  const usage = await store.usage(desired.tenant);
  const conditions = mergeConditions(
    current,
    quotaConditions(generation, desired.tenant, keys.hashes.length, keys.problems, spec.suspend ?? false),
  );
  const wrote = await writeStatusIfChanged(TenantQuota, quota, {
    observedGeneration: generation,
    conditions,
    ...usageStatus(usage, desired.limits, quota.status?.usage, new Date()),
    apiKeys: keys.hashes.length,
  });
  if (wrote) log.debug("status updated");
  await warnOnNewDegraded(quota, current, conditions);
}

async function listQuotas(namespace: string): Promise<TenantQuota[]> {
  try {
    return (await K8s(TenantQuota).InNamespace(namespace).Get()).items;
  } catch (cause) {
    throw new Error(`listing TenantQuotas of namespace ${namespace}`, { cause });
  }
}

/** The referenced Secrets by name (undefined: not found). Only `data` is kept. */
async function readSecrets(namespace: string, names: readonly string[]) {
  const secrets = new Map<string, { data?: Record<string, string> } | undefined>();
  await Promise.all(
    names.map(async (name) => {
      const secret = await getOrUndefined(kind.Secret, namespace, name);
      secrets.set(name, secret ? { data: secret.data } : undefined);
    }),
  );
  return secrets;
}

/** A Warning Event when Degraded turns True or its message changes (not on every resync). */
async function warnOnNewDegraded(quota: TenantQuota, before: Condition[], after: Condition[]) {
  const was = findCondition(before, "Degraded");
  const now = findCondition(after, "Degraded");
  if (now?.status === "True" && (was?.status !== "True" || was.message !== now.message)) {
    await warn(quota, now.reason, now.message);
  }
}

export const tenantQuotaRegistration: KindRegistration = {
  kind: TENANT_QUOTA_KIND,
  model: TenantQuota,
  reconcile: reconcileTenantQuota,
  onGiveUp: (_ctx, namespace, name, error) => recordGiveUp(TenantQuota, namespace, name, error),
};
