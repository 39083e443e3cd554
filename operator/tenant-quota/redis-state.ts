/**
 * What Redis holds for a tenant right now (reads only), so the reconciler writes limits and key
 * hashes only when they differ: a resync costs two reads, and a Redis that lost its data (restart
 * without persistence) is repaired on the next resync.
 */
import type { Redis } from "ioredis";
import { names, tenantKeys } from "../../runtime/shared/contracts/index.js";
import { QUOTA_LIMIT_NAMES, type TenantLimits } from "../../runtime/shared/quota/index.js";

export interface PublishedTenant {
  /** The tenant's limits hash as stored. */
  limitsHash: Record<string, string>;
  /** Hashes of API keys that resolve to this tenant, sorted. */
  hashes: string[];
  /** Hashes that resolve to another tenant -> that tenant. */
  others: Map<string, string>;
}

export async function readPublishedTenant(
  redis: Redis,
  prefix: string,
  tenant: string,
): Promise<PublishedTenant> {
  const [limitsHash, index] = await Promise.all([
    redis.hgetall(tenantKeys(prefix, tenant).limits),
    redis.hgetall(names(prefix).apiKeyIndex),
  ]);
  const hashes: string[] = [];
  const others = new Map<string, string>();
  for (const [hash, owner] of Object.entries(index)) {
    if (owner === tenant) hashes.push(hash);
    else others.set(hash, owner);
  }
  return { limitsHash, hashes: hashes.sort(), others };
}

/** The limits hash QuotaStore.writeTenant stores for `limits` (its `tenant` field marks it known). */
export function limitsHashFor(tenant: string, limits: TenantLimits): Record<string, string> {
  const fields: Record<string, string> = { tenant };
  for (const name of QUOTA_LIMIT_NAMES) {
    const value = limits[name];
    if (value !== undefined) fields[name] = String(value);
  }
  return fields;
}

/** Whether Redis already holds exactly `limits` and `hashes` (sorted) for the tenant. */
export function isPublished(
  published: PublishedTenant,
  tenant: string,
  limits: TenantLimits,
  hashes: readonly string[],
): boolean {
  const want = limitsHashFor(tenant, limits);
  const have = published.limitsHash;
  const sameLimits =
    Object.keys(want).length === Object.keys(have).length &&
    Object.entries(want).every(([k, v]) => have[k] === v);
  return (
    sameLimits &&
    published.hashes.length === hashes.length &&
    published.hashes.every((h, i) => h === hashes[i])
  );
}
